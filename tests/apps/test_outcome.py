"""How every experiment ends: the Outcome's ending lines, --quiet, and the headline number formats."""

import dataclasses
import re

import pytest

from rnnjax.apps.outcome import Outcome, Target, interval_text, seeds_text
from rnnjax.training import stats


def make_outcome(folder, **changes) -> Outcome:
    fields = dict(results={"accuracy": 0.9}, headline=("accuracy 90.0%", "loss 0.3"),
                  targets=(Target("accuracy >= 80%", True), Target("loss <= 0.1", False)), folder=folder)  # fmt: skip
    return Outcome(**(fields | changes))


def test_ending_lists_headline_targets_and_every_path(tmp_path):
    for plot in ("plots/loss.png", "plots/accuracy.png", "pretrain/plots/lm.png", "plots/notes.txt"):
        (tmp_path / plot).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / plot).write_bytes(b"")
    lines = make_outcome(tmp_path).ending().splitlines()
    assert lines == [
        "accuracy 90.0%",
        "loss 0.3",
        "target met: accuracy >= 80%",
        "target NOT met: loss <= 0.1",
        f"report:  {tmp_path / 'report.md'}",
        f"results: {tmp_path / 'results.json'}",
        f"plots:   {tmp_path / 'plots'}/ (accuracy.png, loss.png)",
        f"plots:   {tmp_path / 'pretrain' / 'plots'}/ (lm.png)",
    ]


def test_ending_without_plots_or_targets_is_headline_and_two_paths(tmp_path):
    lines = make_outcome(tmp_path, targets=(), headline=("one line",)).ending().splitlines()
    assert lines == ["one line", f"report:  {tmp_path / 'report.md'}", f"results: {tmp_path / 'results.json'}"]


def test_quiet_ending_is_the_report_path_alone(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "loss.png").write_bytes(b"")
    assert make_outcome(tmp_path, quiet=True).ending() == str(tmp_path / "report.md")
    assert make_outcome(str(tmp_path)).folder == tmp_path  # a str folder becomes a Path


def test_targets_met_only_when_every_target_is(tmp_path):
    assert not make_outcome(tmp_path).targets_met
    assert make_outcome(tmp_path, targets=(Target("a", True), Target("b", True))).targets_met
    assert make_outcome(tmp_path, targets=()).targets_met  # nothing stated, nothing missed


@pytest.mark.parametrize(
    "changes, error, words",
    [({"headline": ["a list"]}, TypeError, "headline must be a tuple"),
     ({"headline": ("two\nlines",)}, ValueError, "one-line"),
     ({"headline": ("",)}, ValueError, "non-empty"),
     ({"targets": ("met",)}, TypeError, "Target values")],
)  # fmt: skip
def test_outcome_rejects_malformed_headline_and_targets(tmp_path, changes, error, words):
    with pytest.raises(error, match=words):
        make_outcome(tmp_path, **changes)


def test_target_needs_a_statement_and_a_bool():
    with pytest.raises(ValueError, match="statement must be a non-empty string"):
        Target("", True)
    with pytest.raises(TypeError, match="met must be a bool; got int 1"):
        Target("accuracy >= 0.9", 1)


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+\.?\d*", text)]


def test_seeds_text_shows_the_summary_as_stored_and_as_a_dataclass():
    summary = stats.seed_summary([0.71, 0.74, 0.76])
    text = seeds_text(summary, percent=True)
    assert text == seeds_text(summary.as_dict(), percent=True)  # results.json's form reads the same
    assert text.endswith("3 seeds)") and "95% CI" in text
    mean, spread, _, low, high, _ = numbers(text)
    expected = [100 * v for v in (summary.mean, summary.standard_deviation, summary.low, summary.high)]
    assert [mean, spread, low, high] == pytest.approx(expected, abs=0.05)  # one decimal
    plain = seeds_text(summary, digits=4, unit="nats")
    assert plain.startswith(f"{summary.mean:.4f} nats +- {summary.standard_deviation:.4f} nats (95% CI ")
    assert seeds_text(summary) != seeds_text(summary, digits=4)
    wide = stats.seed_summary([0.02, 0.3])  # t-interval over 2 seeds: far past 0 and 100%
    assert wide.low < 0 and wide.high > 1
    assert seeds_text(wide, percent=True).endswith("(95% CI 0.0-100.0, 2 seeds)")  # a fraction stays in [0, 1]
    assert seeds_text(wide).endswith(f"(95% CI {wide.low:.3f}-{wide.high:.3f}, 2 seeds)")  # other units: as they are


def test_interval_text_in_percent_and_plain():
    assert interval_text(0.973, (0.951, 0.986)) == "97.3% [95.1, 98.6]"
    assert interval_text(0.973, (0.951, 0.986), percent=False, digits=2) == "0.97 [0.95, 0.99]"


def test_outcome_is_frozen(tmp_path):
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_outcome(tmp_path).quiet = True
