"""The task probe's answers from rows: selection on validation, delay, width, bottleneck and floor comparisons."""

import numpy as np

from rnnjax.probes import task_report


def _row(kind, width, delay, seed, test, validation=None, half=0.01, cell="gru"):
    model = cell + {"unidirectional": "", "bidirectional": "-bi", "encoder_decoder": "-encdec",
                    "attention": "-attn"}[kind]  # fmt: skip
    return {"kind": kind, "model": model, "cell": cell, "width": width, "delay": delay, "seed": seed,
            "train_error": test, "validation_error": test if validation is None else validation, "test_error": test,
            "test_error_low": max(test - half, 0.0), "test_error_high": test + half, "seconds": 1.0}  # fmt: skip


def _floor(floor, error, delay=None, rank=None, half=0.01):
    return {"floor": floor, "delay": delay, "rank": rank, "error": error, "error_low": max(error - half, 0.0),
            "error_high": error + half, "penalty": 1e-3}  # fmt: skip


def test_select_uses_validation_not_test():
    rows = [_row("bidirectional", 8, 0, 0, test=0.1, validation=0.5), _row("bidirectional", 8, 0, 1, test=0.3,
            validation=0.2), _row("bidirectional", 8, 0, 2, test=0.2, validation=0.4)]  # fmt: skip
    (chosen,) = task_report.select(rows)
    assert chosen["seed"] == 1 and chosen["test_error"] == 0.3
    assert chosen["median_test_error"] == 0.2 and chosen["seeds"] == 3


def test_delay_needed_is_the_first_delay_within_the_reference_interval():
    assert task_report.delay_needed({0: 0.5, 1: 0.2, 2: 0.051, 3: 0.04}, reference_high=0.06) == 2
    assert task_report.delay_needed({0: 0.5, 1: 0.2}, reference_high=0.06) is None
    floors = [_floor("causal", 0.4, delay=0), _floor("causal", 0.011, delay=1), _floor("causal", 0.0, delay=2),
              _floor("noncausal", 0.0)]  # fmt: skip
    assert task_report.floor_delay_needed(floors) == 2
    floors[1]["error"] = 0.009  # now inside the non-causal interval [0, 0.01]
    assert task_report.floor_delay_needed(floors) == 1


def test_width_needed():
    assert task_report.width_needed({4: (0.3, 0.32), 8: (0.11, 0.13), 16: (0.1, 0.12), 32: (0.105, 0.12)}) == 8
    assert task_report.width_needed({4: (0.3, 0.32), 8: (0.2, 0.22)}) == 8


def test_answers_of_an_aligned_task():
    rows = [_row("unidirectional", 16, delay, 0, test) for delay, test in enumerate([0.5, 0.2, 0.02, 0.015])]
    rows += [_row("bidirectional", width, 0, 0, test) for width, test in ((8, 0.1), (16, 0.015), (32, 0.012))]
    floors = [_floor("causal", 0.505 if d == 0 else 0.6, delay=d) for d in range(4)] + [_floor("noncausal", 0.3)]
    selected = task_report.select(rows)
    answers = task_report.answers(selected, floors, width=16)
    assert "gap 0.485" in answers["Causal gap"] and "gap 0.205" in answers["Causal gap"]
    assert answers["Delay needed"].startswith("gru: D = 2;")
    assert "no delay up to the largest tried" in answers["Delay needed"]
    assert answers["Width needed"].startswith("gru-bi: width 16")
    assert answers["Where the nonlinearity pays"].startswith("6 of 7 rows beat")  # not D=0: 0.5+-0.01 vs 0.505+-0.01
    assert "Does a width-m vector bind?" not in answers


def test_bottleneck_answer():
    rows = [_row("encoder_decoder", m, 0, 0, test) for m, test in ((2, 0.6), (8, 0.1))]
    rows += [_row("attention", m, 0, 0, test) for m, test in ((2, 0.1), (8, 0.095))]
    floors = [_floor("linear", 0.2), _floor("rank", 0.7, rank=2), _floor("rank", 0.3, rank=8)]
    answers = task_report.answers(task_report.select(rows), floors, width=8)
    text = answers["Does a width-m vector bind?"]
    assert "m=2 (gru): encoder-decoder 0.6" in text and "(binds)" in text and "(does not bind)" in text
    assert "linear rank-m floor 0.7" in text
    assert "Causal gap" not in answers
    assert answers["Where the nonlinearity pays"].startswith("4 of 4 rows")


def test_markdown_and_plots(tmp_path):
    rows = [_row("unidirectional", 4, d, s, 0.3 - 0.1 * d + 0.01 * s) for d in range(3) for s in range(2)]
    rows += [_row("bidirectional", w, 0, s, 0.1 / w + 0.01 * s) for w in (2, 4) for s in range(2)]
    floors = [_floor("causal", 0.35 - 0.1 * d, delay=d) for d in range(3)] + [_floor("noncausal", 0.15)]
    selected = task_report.select(rows)
    files = task_report.make_plots(selected, floors, 4, False, lambda name: tmp_path / f"{name}.png")
    assert sorted(files) == ["delays", "widths"] and all((tmp_path / f).is_file() for f in files.values())
    text = task_report.markdown("toy", "facts", selected, floors, 4, False, files)
    assert text.count("\n| ") >= len(selected) + len(floors) and "![delays](plots/delays.png)" in text
    assert np.isclose(selected[0]["median_test_error"], 0.305)
