"""Plots and the markdown report of the universal-approximation probe (theory curves next to trained ones)."""

from __future__ import annotations

import pathlib
from typing import Any, Callable

import numpy as np

from rnnjax.analysis.plots import new_figure, save_figure
from rnnjax.probes.results import summarise

__all__ = ["make_plots", "study_table", "findings", "summarise", "violations", "interval_extent"]

Rows = list[dict[str, Any]]


def _select(rows: Rows, **where) -> Rows:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def _floor(values) -> np.ndarray:
    """Clip to 1e-16 so that exact zeros show on log axes."""
    return np.maximum(np.asarray(values, np.float64), 1e-16)


def _groups(rows: Rows, *keys: str) -> dict[tuple, Rows]:
    out: dict[tuple, Rows] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def plot_vs(rows: Rows, axis, x: str, label_keys=("target", "model"), theory: bool = True, log_x: bool = False) -> None:
    """Median NMSE (line) and best (dots) vs ``x`` per series, with the theory value (dashed) or band (shaded)."""
    for label, series in sorted(_groups(rows, *label_keys).items()):
        series = sorted(series, key=lambda r: r[x])
        xs = [r[x] for r in series]
        (line,) = axis.plot(xs, _floor([r["median"] for r in series]), "o-", label=" ".join(map(str, label)))
        axis.plot(xs, _floor([r["best"] for r in series]), ".", color=line.get_color())
        if theory and series[0]["theory_nmse"] is not None:
            upper = _floor([r["theory_nmse"] for r in series])
            lower = _floor([r["theory_nmse_lower"] for r in series])
            if np.allclose(upper, lower):
                axis.plot(xs, upper, "--", color=line.get_color(), alpha=0.8)
            else:
                axis.fill_between(xs, lower, upper, color=line.get_color(), alpha=0.15)
    axis.set_yscale("log")
    trained = [r["best"] for r in rows if r["best"] > 0]
    if trained:  # exact-zero theory values would otherwise stretch the axis to 1e-16
        axis.set_ylim(bottom=max(1e-16, min(trained) / 30))
    if log_x:
        axis.set_xscale("log", base=2)
    axis.set_xlabel(x)
    axis.set_ylabel("test NMSE")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def plot_lengths(records: Rows, axis, train_length_key: str = "train_length") -> None:
    """Median NMSE at T, 2T and 10T per (target, model)."""
    for (target, model), group in sorted(_groups(records, "target", "model").items()):
        fields = ("nmse_test", "nmse_test_2x", "nmse_test_long")
        values = [np.median([r[f] for r in group if r[f] is not None] or [np.nan]) for f in fields]
        axis.plot([1, 2, 10], _floor(np.minimum(values, 1e6)), "o-", label=f"{target} {model}")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("test length / training length")
    axis.set_ylabel("test NMSE (median over seeds)")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def _figure(path: pathlib.Path, panels: int, draw: Callable[[list], None], title: str) -> str:
    figure = new_figure(figsize=(5.5 * panels, 4.2))
    draw(list(figure.subplots(1, panels, squeeze=False)[0]))
    figure.suptitle(title)
    return save_figure(figure, path, dpi=110).name


def make_plots(records: Rows, extras: dict[str, Any], plot_path: Callable[[str], pathlib.Path]) -> dict[str, str]:
    """All plots present for the studies that ran; returns {study: file name}."""
    table = summarise(records)
    files = {}
    uni = [r for r in _select(table, study="causality") if "@last" not in r["target"] and "-bi" not in r["model"]]
    if uni:
        names = sorted({r["target"] for r in uni})

        def draw_causality(ax):
            for axis, name in zip(ax, names):
                plot_vs(_select(uni, target=name), axis, "delay")
                axis.set_title(name, fontsize=9)

        files["causality"] = _figure(plot_path("causality"), len(names), draw_causality,
                                     "Study 1: unidirectional models vs delay D (dashed: exact floor; linear: "
                                     "time-invariant floor, others: causal floor)")  # fmt: skip
    if _select(records, study="encoder_decoder"):
        rows = _select(records, study="encoder_decoder")
        names = sorted({r["target"] for r in rows})
        files["encoder_decoder"] = _figure(plot_path("encoder_decoder"), len(names),
                                           lambda ax: _encoder_decoder_panels(rows, names, ax),
                                           "Study 7: encoder-decoder NMSE vs vector width m (black: rank floor)")
    for study, x, title in (
        ("width", "width", "Study 2: width thresholds (band: theory)"),
        ("memory", "width", "Study 3: memory vs width (band: theory)"),
        ("depth", "width", "Study 6: deep narrow ReLU RNNs"),
    ):
        rows = _select(table, study=study)
        if rows:
            keys = ("target", "model") if study != "depth" else ("model", "depth")
            def draw(ax, rows=rows, x=x, keys=keys):
                plot_vs(rows, ax[0], x, keys, log_x=True)

            files[study] = _figure(plot_path(study), 1, draw, title)
    if "memory" in extras and extras["memory"].get("step_responses"):
        files["memory_steps"] = _figure(plot_path("memory_steps"), 3, lambda ax: _step_responses(extras["memory"], ax),
                                        "Study 3: step responses to 10x the training length")  # fmt: skip
    if _select(records, study="wiener"):
        files["wiener"] = _figure(plot_path("wiener"), 1, lambda ax: _bars(_select(table, study="wiener"), ax[0]),
                                  "Study 4: Wiener system (red: best linear filter, theory)")  # fmt: skip
    for study in ("non_fading", "depth"):
        rows = _select(records, study=study)
        if rows:
            def draw_lengths(ax, rows=rows):
                plot_lengths(rows, ax[0])

            files[f"{study}_lengths"] = _figure(
                plot_path(f"{study}_lengths"), 1, draw_lengths, f"{study}: error vs test length"
            )
    return files


def _step_responses(extra: dict[str, Any], axes) -> None:
    """One panel per kernel: the target's step response (thick) and the trained models' (one seed per width)."""
    curves = extra["step_responses"]
    for axis, name in zip(axes, [n for n in curves if "|" not in n]):
        target = np.asarray(curves[name])
        axis.plot(target, "k-", linewidth=2.5, label=f"{name} (target)")
        for label, curve in curves.items():
            if label.startswith(f"{name}|"):
                axis.plot(curve, ":", label=f"width {label.split('|')[1]}")
        low, high = float(target.min()), float(target.max())
        axis.set_ylim(low - 0.5 * (high - low) - 0.1, high + 0.5 * (high - low) + 0.1)
        axis.axvline(extra["train_length"], color="k", alpha=0.4)
        axis.set_xlabel("t (vertical line: training length)")
        axis.set_ylabel("step response")
        axis.legend(fontsize=7)


def _bars(rows: Rows, axis) -> None:
    names = [r["model"] for r in rows]
    axis.bar(names, _floor([r["median"] for r in rows]), alpha=0.7)
    axis.plot(names, _floor([r["best"] for r in rows]), "k.")
    for i, row in enumerate(rows):
        if row["theory_nmse"] is not None:
            axis.hlines(row["theory_nmse"], i - 0.4, i + 0.4, colors="red", linestyles="--")
    axis.set_yscale("log")
    axis.set_ylabel("test NMSE")


def _encoder_decoder_panels(rows: Rows, names: list[str], axes) -> None:
    """One panel per target: median test NMSE vs m per model (solid: no attention, dashed: attention) + rank floor."""
    for axis, name in zip(axes, names):
        chosen = _select(rows, target=name)
        for model, group in sorted(_groups(chosen, "model").items()):
            widths = sorted({r["width"] for r in group})
            medians = [float(np.median([r["nmse_test"] for r in group if r["width"] == w])) for w in widths]
            axis.plot(widths, _floor(medians), "o--" if model[0].endswith("-attn") else "o-", label=model[0])
        floors = sorted({(r["width"], r["rank_floor"]) for r in chosen if r.get("rank_floor") is not None})
        if floors:
            axis.plot(*zip(*floors), "k-", linewidth=2.5, alpha=0.6, label="rank floor (linear)")
        axis.set_yscale("log")
        axis.set_xlabel("vector width m")
        axis.set_ylabel("test NMSE")
        axis.set_title(name, fontsize=9)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=6)


# --------------------------------------------------------------------------- intervals and checks


def median_interval(group: Rows) -> tuple[float, float, float]:
    """(median, low, high) of nmse_test over seeds: the middle row's interval (mean of the two middle ones)."""
    ordered = sorted(group, key=lambda r: r["nmse_test"])
    middle = ordered[(len(ordered) - 1) // 2 : len(ordered) // 2 + 1]
    return tuple(float(np.mean([r[f] for r in middle])) for f in ("nmse_test", "nmse_test_low", "nmse_test_high"))


def _relative_half_widths(records: Rows, field: str = "nmse_test") -> np.ndarray:
    kept = [r for r in records if r.get(field) is not None and r[field] > 1e-12 and r.get(f"{field}_high") is not None]
    return np.array([(r[f"{field}_high"] - r[f"{field}_low"]) / (2 * r[field]) for r in kept])


def interval_extent(records: Rows, field: str = "nmse_test") -> float:
    """Largest relative half-width (high - low) / (2 value) of the 95% intervals of ``field`` (values > 1e-12)."""
    widths = [(r[f"{field}_high"] - r[f"{field}_low"]) / (2 * r[field]) for r in records
              if r.get(field) is not None and r[field] > 1e-12 and r.get(f"{field}_high") is not None]  # fmt: skip
    return float(max(widths, default=0.0))


EXACT_FLOORS = ("theory_nmse_lower", "causal_floor", "time_invariant_floor", "rank_floor")


def _applies(record: dict, floor: str) -> bool:
    """causal floors bind every model; time-invariant and rank floors bind linear models only."""
    if floor == "time_invariant_floor":
        return record.get("readout") == "none"
    if floor == "rank_floor":
        return record["model"].startswith("linear") and record["model"].endswith("-encdec")
    return True


def violations(records: Rows, tolerance: float = 1e-9) -> list[str]:
    """Rows whose test NMSE lies below an optimum no model of their kind can beat, beyond the 95% interval.

    Any such row is an error (a wrong floor, a leak between train and test, or a broken metric).
    """
    found = []
    for record in records:
        for floor in EXACT_FLOORS:
            value = record.get(floor)
            if value is not None and _applies(record, floor) and record["nmse_test_high"] < value - tolerance:
                found.append(
                    f"{record['study']}/{record['target']}/{record['model']} w{record['width']} D{record['delay']} "
                    f"seed {record['seed']}: test NMSE {record['nmse_test']:.4g} (95% interval up to "
                    f"{record['nmse_test_high']:.4g}) is below {floor} {value:.4g}"
                )
    return found


# --------------------------------------------------------------------------- markdown


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _theory_text(lower, upper) -> str:
    if lower is None and upper is None:
        return "-"
    if upper is None:
        return f">= {_fmt(lower)}"
    return _fmt(upper) if lower is None or np.isclose(lower, upper) else f"[{_fmt(lower)}, {_fmt(upper)}]"


EXTRA_COLUMNS = {
    "causality": (("causal_floor", "causal floor"), ("time_invariant_floor", "time-invariant floor")),
    "encoder_decoder": (("rank_floor", "rank floor"),),
}


def study_table(records: Rows, study: str) -> str:
    """Markdown: per (target, model, width, depth, delay) the median test NMSE over seeds with its 95% interval,
    the best seed, NMSE at 10T, the theory and the study's floors."""
    rows = []
    extra = EXTRA_COLUMNS.get(study, ())
    groups = _groups(_select(records, study=study), "target", "model", "width", "depth", "delay")
    for key, group in sorted(groups.items()):
        median, low, high = median_interval(group)
        longs = [r["nmse_test_long"] for r in group if r["nmse_test_long"] is not None]
        theory = _theory_text(group[0]["theory_nmse_lower"], group[0]["theory_nmse"])
        cells = [*map(str, key), f"{_fmt(median)} [{_fmt(low)}, {_fmt(high)}]",
                 _fmt(float(np.min([r["nmse_test"] for r in group]))),
                 _fmt(float(np.median(longs))) if longs else "-", theory,
                 *(_fmt(group[0].get(field)) for field, _ in extra)]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    names = ["target", "model", "width", "depth", "delay", "NMSE test, median [95% interval]", "best",
             "NMSE at 10T (median)", "theory", *(title for _, title in extra)]  # fmt: skip
    return "\n".join(["| " + " | ".join(names) + " |", "|" + "---|" * len(names), *rows])


def _median(records: Rows, field: str = "nmse_test", **where) -> float | None:
    values = [r[field] for r in _select(records, **where) if r[field] is not None]
    return float(np.median(values)) if values else None


def _lengths(records: Rows, **where) -> str:
    """'T a, 2T b, 10T c' medians for one group."""
    fields = (("T", "nmse_test"), ("2T", "nmse_test_2x"), ("10T", "nmse_test_long"))
    return ", ".join(f"{name} {_fmt(_median(records, field, **where))}" for name, field in fields)


def _with_interval(records: Rows, **where) -> str:
    """'median [low, high]' of nmse_test over the selected rows (seeds); '-' when none."""
    rows = _select(records, **where)
    if not rows:
        return "-"
    median, low, high = median_interval(rows)
    return f"{_fmt(median)} [{_fmt(low)}, {_fmt(high)}]"


def _causality(records: Rows) -> str:
    where = {"study": "causality", "target": "centred_sum4"}
    delays = [r["delay"] for r in _select(records, model="linear", **where)]
    floor = _select(records, model="linear", delay=0, **where)[0]["causal_floor"]
    others = [  # each clause only when the run trained that model
        ("a causal GRU at", dict(model="gru", delay=0, **where)),
        (f"with output delay D={max(delays)}:", dict(model="linear", delay=max(delays), **where)),
        ("bidirectional:", dict(model="linear-bi", **where)),
        ("many-to-one (last step):", dict(study="causality", target="centred_sum4@last", model="linear")),
    ]
    clauses = [f"{label} {_with_interval(records, **w)}" for label, w in others if _select(records, **w)]
    text = (
        f"Centred moving sum (window 9): a causal linear RNN stops at NMSE "
        f"{_with_interval(records, model='linear', delay=0, **where)} (exact floor {_fmt(floor)})"
        + "".join(f"; {clause}" for clause in clauses) + "."
    )
    return text + " " + _reversal(records, delays)


def _reversal(records: Rows, delays: list[int]) -> str:
    """Reversal: the causal floor falls with D and vanishes bidirectionally; the time-invariant one stays high."""
    where = {"study": "causality", "target": "reversal"}
    if not _select(records, **where):
        return ""
    first = lambda **w: _select(records, **where, **w)[0]  # noqa: E731
    bi_models = sorted({r["model"] for r in _select(records, bidirectional=True, **where)} - {"linear-bi"})
    nonlinear_bi = "; ".join(f"{m} {_with_interval(records, model=m, **where)}" for m in bi_models)
    linear_bi = _select(records, model="linear-bi", **where)  # absent when the run has no bidirectional models
    bi_floor = _fmt(linear_bi[0]["time_invariant_floor"]) if linear_bi else "-"
    return (
        f"Reversal (not time-invariant): causal floor {_fmt(first(delay=0)['causal_floor'])} at D=0 and "
        f"{_fmt(first(delay=max(delays))['causal_floor'])} at D={max(delays)} (0 bidirectionally), but the "
        "time-invariant floor that binds every linear RNN is "
        f"{_fmt(first(model='linear', delay=0)['time_invariant_floor'])} "
        f"(D=0) and {bi_floor} bidirectionally; trained: linear D=0 "
        f"{_with_interval(records, model='linear', delay=0, **where)}, linear-bi "
        f"{_with_interval(records, model='linear-bi', **where)}"
        + (f", nonlinear bidirectional: {nonlinear_bi}" if nonlinear_bi else "")
        + ". A bidirectional model removes the information floor, not the time-invariance one."
    )


def _width(records: Rows) -> str:
    where = {"study": "width", "target": "oscillators4"}
    rows = _select(records, **where)
    exact = sorted({r["width"] for r in rows if r["nmse_test"] <= 1e-8})
    widths = sorted({r["width"] for r in rows})
    medians = ", ".join(f"width {w}: {_fmt(_median(records, width=w, **where))}" for w in widths)
    return f"Order-4 target: widths where some seed reaches test NMSE <= 1e-8: {exact or 'none'}; medians: {medians}."


def _memory(records: Rows) -> str:
    largest = max(r["width"] for r in _select(records, study="memory"))
    parts = []
    for target in sorted({r["target"] for r in _select(records, study="memory")}):
        where = {"study": "memory", "target": target, "width": largest}
        long = _fmt(_median(records, "nmse_test_long", **where))
        parts.append(f"{target} {_with_interval(records, **where)} (10T: {long})")
    text = f"At width {largest}: " + ", ".join(parts) + ". "
    return text + _gaps(_select(records, study="memory"))


def _gaps(rows: Rows) -> str:
    """Approximation gap (theory: the best error at this width) and optimisation gap (best trained - theory)."""
    parts = []
    for (target, width), group in sorted(_groups(rows, "target", "width").items()):
        upper = group[0]["theory_nmse"]
        best = min(r["nmse_test"] for r in group)
        if upper is not None:
            parts.append(f"{target} w{width}: {_fmt(upper)} / {_fmt(best - upper)}")
    return "Approximation gap (theory, upper end of the band) / optimisation gap (best trained - theory): " + (
        "; ".join(parts) + "."
    )


def _wiener(records: Rows, extras: dict[str, Any] | None = None) -> str:
    rows = _select(records, study="wiener")
    names = sorted({r["model"] for r in rows})
    models = ", ".join(f"{m}: {_with_interval(records, study='wiener', model=m)}" for m in names)
    floor = next((r["theory_nmse"] for r in rows if r["theory_nmse"] is not None), None)
    text = f"{models} (best time-invariant linear filter, theory: {_fmt(floor)}"
    varying = (extras or {}).get("time_varying_floor")
    return text + (f"; best time-varying linear estimate: {_fmt(varying)})." if varying is not None else ").")


def _encoder_decoder(records: Rows) -> str:
    """Per target: NMSE at each width for every model next to the rank floor."""
    rows = _select(records, study="encoder_decoder")
    parts = []
    for target in sorted({r["target"] for r in rows}):
        chosen = _select(rows, target=target)
        widths = sorted({r["width"] for r in chosen})
        floors = {r["width"]: r["rank_floor"] for r in chosen}
        floor_text = ", ".join(f"m={w}: {_fmt(floors[w])}" for w in widths) if floors[widths[0]] is not None else "none"
        models = "; ".join(f"{m} " + _width_medians(chosen, m, widths) for m in sorted({r["model"] for r in chosen}))
        parts.append(f"{target} (rank floor {floor_text}): {models}")
    return "Median test NMSE at the widths listed: " + " | ".join(parts) + "."


def _by_length(records: Rows, study: str) -> str:
    keys = sorted({(r["target"], r["model"], r["width"]) for r in _select(records, study=study)})
    parts = [f"{t} {m} w{w}: {_lengths(records, study=study, target=t, model=m, width=w)}" for t, m, w in keys]
    return "; ".join(parts) + "."


def findings(records: Rows, extras: dict[str, Any] | None = None) -> dict[str, str]:
    """One paragraph per study that ran, with the measured numbers, for the report."""
    writers = {
        "causality": _causality, "width": _width, "memory": _memory,
        "wiener": lambda rows: _wiener(rows, (extras or {}).get("wiener")), "encoder_decoder": _encoder_decoder,
        "non_fading": lambda rows: _by_length(rows, "non_fading"), "depth": lambda rows: _by_length(rows, "depth"),
    }  # fmt: skip
    out = {}
    for study, writer in writers.items():
        if study == "causality" and not _select(records, study=study, model="linear", delay=0, target="centred_sum4"):
            continue
        if study == "width" and not _select(records, study=study, target="oscillators4"):
            continue
        if _select(records, study=study):
            out[study] = writer(records)
    return out


# --------------------------------------------------------------------------- the report's sections and short answer

SECTIONS = {
    "causality": ("1. Causal vs non-causal many-to-many: information and time-invariance floors", ["causality"]),
    "width": ("2. Width thresholds (exact representability)", ["width"]),
    "memory": ("3. Memory decay: the curse of memory", ["memory", "memory_steps"]),
    "wiener": ("4. Nonlinear fading memory: a Wiener system", ["wiener"]),
    "non_fading": ("5. Non-fading memory: parity and counting", ["non_fading_lengths"]),
    "depth": ("6. Depth vs width for deep narrow ReLU RNNs", ["depth", "depth_lengths"]),
    "encoder_decoder": ("7. Encoder-decoder many-to-many (N -> M through a width-m vector)", ["encoder_decoder"]),
}

_READING = (
    "The theory columns give the optimum that no training can beat: an exact value, or a band [lower, upper] "
    "where the exact optimum has no closed form (the upper end never rises with width: a smaller model embeds "
    "in a larger one). Every test NMSE carries a 95% interval for its test-set sampling error (delta method over "
    "independent test sequences). A trained value above the theory shows an optimisation failure; theory above "
    "zero shows an expressivity or information limit; a trained value below an exact optimum beyond its interval "
    "would be a bug, and the report lists any such row."
)


def _value(records: Rows, field: str = "nmse_test", **where) -> str:
    return _fmt(_median(records, field, **where)) if _select(records, **where) else "-"


def _first(records: Rows, field: str, **where):
    rows = _select(records, **where)
    return rows[0].get(field) if rows else None


def _width_medians(rows: Rows, model: str, widths: list[int]) -> str:
    """'a, b, c': the model's median test NMSE at each width it was trained at."""
    return ", ".join(_fmt(_median(rows, model=model, width=w)) for w in widths if _select(rows, model=model, width=w))


def _aligned_answer(records: Rows) -> str:
    where = {"study": "causality", "target": "centred_sum4"}
    text = (
        "**Short answer.** *Aligned many-to-many* (one output per input step): yes for causal maps with fading "
        "memory; the error falls towards 0 with width, and a linear RNN whose width reaches a linear target's "
        "state-space order fits it exactly (study 2). For a non-causal target no unidirectional model of any width "
        "or cell beats the causal (information) floor: centred moving sum, floor "
        f"{_fmt(_first(records, 'causal_floor', model='linear', delay=0, **where))}, "
        f"trained linear RNN {_with_interval(records, model='linear', delay=0, **where)}, GRU "
        f"{_with_interval(records, model='gru', delay=0, **where)}. That floor goes away with a bidirectional "
        "model, an output delay covering the look-ahead, or a many-to-one label."
    )
    where = {"study": "causality", "target": "reversal"}
    if _select(records, **where):
        text += (
            " But a linear RNN is also *time-invariant*, and for a target that is not (reversal) a second floor "
            f"binds it: {_fmt(_first(records, 'time_invariant_floor', model='linear-bi', **where))} for the best "
            f"bidirectional linear model (trained: {_with_interval(records, model='linear-bi', **where)}), although "
            "the information floor is 0 there; so \"bidirectional removes the floor\" holds only for time-invariant "
            "targets."
        )
        bi = sorted({r["model"] for r in _select(records, bidirectional=True, **where)} - {"linear-bi"})
        if bi:
            text += " Nonlinear bidirectional models at the same width: " + ", ".join(
                f"{m} {_with_interval(records, model=m, **where)}" for m in bi
            ) + "."
    return text


def _encoder_decoder_answer(records: Rows) -> str:
    rows = _select(records, study="encoder_decoder", target="reversal")
    if not rows:
        return ""
    widths = sorted({r["width"] for r in rows})
    largest, smallest = widths[-1], widths[0]
    models = sorted(m for m in {r["model"] for r in rows} if _select(rows, model=m, width=smallest)
                    and _select(rows, model=m, width=largest))  # fmt: skip
    parts = ", ".join(f"{m} {_value(rows, model=m, width=smallest)} -> {_value(rows, model=m, width=largest)}"
                      for m in models)  # fmt: skip
    return (
        f" *Encoder-decoder many-to-many* (the whole input squeezed into a width-m vector, then M outputs): on "
        f"reversal of N={rows[0]['train_length']} steps the linear rank floor is "
        f"{_fmt(_first(rows, 'rank_floor', width=smallest))} at m={smallest} and "
        f"{_fmt(_first(rows, 'rank_floor', width=largest))} at m={largest}; median test NMSE from m={smallest} to "
        f"m={largest}: {parts}. {_below_rank_floor(records)}"
    )


def _below_rank_floor(records: Rows) -> str:
    """How many nonlinear (target, model, width) medians lie below the linear rank floor beyond their interval."""
    counts = {"-encdec": [0, 0], "-attn": [0, 0]}
    groups = _groups(_select(records, study="encoder_decoder"), "target", "model", "width")
    for (_, model, _), group in groups.items():
        floor = group[0].get("rank_floor")
        suffix = "-attn" if model.endswith("-attn") else "-encdec"
        if floor is None or model.startswith("linear"):
            continue
        median, _, high = median_interval(group)
        counts[suffix][0] += high < floor
        counts[suffix][1] += 1
    return (
        f"Nonlinear encoder-decoders below the linear rank floor beyond their interval: {counts['-encdec'][0]} of "
        f"{counts['-encdec'][1]} (target, cell, width) medians without attention, {counts['-attn'][0]} of "
        f"{counts['-attn'][1]} with attention."
    )


def answer(records: Rows) -> str:
    """The report's short answer, with this run's numbers (aligned, encoder-decoder, time-invariance)."""
    text = _aligned_answer(records) if _select(records, study="causality", target="centred_sum4") else (
        "**Short answer.** (study 1 did not run.)"
    )  # fmt: skip
    text += _encoder_decoder_answer(records)
    widths = _relative_half_widths(records)
    bad = violations(records)
    text += (
        f" 95% intervals of the test NMSEs: median relative half-width {100 * float(np.median(widths)):.1f}%, "
        f"{100 * float(np.mean(widths <= 0.02)):.0f}% of rows within +-2% (the widest, {100 * widths.max():.0f}%, "
        f"on tiny NMSEs with heavy-tailed per-sequence errors). Rows below an exact optimum beyond their interval: "
        f"{len(bad)}."
    ) if widths.size else ""
    return text + "\n\n" + _READING + "\n"
