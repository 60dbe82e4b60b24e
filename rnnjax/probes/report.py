"""Plots and the markdown report of the universal-approximation probe (theory curves next to trained ones)."""

from __future__ import annotations

import pathlib
from typing import Any, Callable

import numpy as np

from rnnjax.analysis.plots import new_figure, save_figure
from rnnjax.probes.sweep import summarise

__all__ = ["make_plots", "study_table", "findings", "summarise"]

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
        files["causality"] = _figure(plot_path("causality"), 1, lambda ax: plot_vs(uni, ax[0], "delay"),
                                     "Study 1: causal models vs delay D (dashed: exact floor)")  # fmt: skip
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


# --------------------------------------------------------------------------- markdown


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def study_table(records: Rows, study: str) -> str:
    """Markdown: one row per (target, model, width, depth, delay) with median/best test NMSE over seeds and theory."""
    rows = []
    groups = _groups(_select(records, study=study), "target", "model", "width", "depth", "delay")
    for key, group in sorted(groups.items()):
        tests = [r["nmse_test"] for r in group]
        longs = [r["nmse_test_long"] for r in group if r["nmse_test_long"] is not None]
        lower, upper = group[0]["theory_nmse_lower"], group[0]["theory_nmse"]
        theory = _fmt(upper) if lower is None or np.isclose(lower, upper) else f"[{_fmt(lower)}, {_fmt(upper)}]"
        cells = [*map(str, key), _fmt(float(np.median(tests))), _fmt(float(np.min(tests))),
                 _fmt(float(np.median(longs))) if longs else "-", theory]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    header = "| target | model | width | depth | delay | NMSE test (median) | best | NMSE at 10T (median) | theory |"
    return "\n".join([header, "|" + "---|" * 9, *rows])


def _median(records: Rows, field: str = "nmse_test", **where) -> float | None:
    values = [r[field] for r in _select(records, **where) if r[field] is not None]
    return float(np.median(values)) if values else None


def _lengths(records: Rows, **where) -> str:
    """'T a, 2T b, 10T c' medians for one group."""
    fields = (("T", "nmse_test"), ("2T", "nmse_test_2x"), ("10T", "nmse_test_long"))
    return ", ".join(f"{name} {_fmt(_median(records, field, **where))}" for name, field in fields)


def _causality(records: Rows) -> str:
    where = {"study": "causality", "target": "centred_sum4"}
    delays = [r["delay"] for r in _select(records, model="linear", **where)]
    floor = _select(records, model="linear", delay=0, **where)[0]["theory_nmse"]
    return (
        f"Centred moving sum (window 9): a causal linear RNN stops at NMSE "
        f"{_fmt(_median(records, model='linear', delay=0, **where))} (exact floor {_fmt(floor)}), a causal GRU at "
        f"{_fmt(_median(records, model='gru', delay=0, **where))}; with output delay D={max(delays)}: "
        f"{_fmt(_median(records, model='linear', delay=max(delays), **where))}; bidirectional: "
        f"{_fmt(_median(records, model='linear-bi', **where))}; many-to-one (last step): "
        f"{_fmt(_median(records, study='causality', target='centred_sum4@last', model='linear'))}."
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
        parts.append(f"{target} {_fmt(_median(records, **where))} (10T: {long})")
    text = f"At width {largest}: " + ", ".join(parts) + ". "
    return text + _gaps(_select(records, study="memory"))


def _gaps(rows: Rows) -> str:
    """Say where training stays above the achievable (upper) theory value: optimisation, not expressivity."""
    above = []
    for (target, width), group in sorted(_groups(rows, "target", "width").items()):
        upper = group[0]["theory_nmse"]
        best = min(r["nmse_test"] for r in group)
        if upper is not None and best > 10 * upper + 1e-9:
            above.append(f"{target} w{width} (best {_fmt(best)} vs achievable {_fmt(upper)})")
    if not above:
        return "Every trained model reached its theory band."
    lead = "Trained error above what the width allows (optimisation, not expressivity, is the limit): "
    return lead + "; ".join(above) + "."


def _wiener(records: Rows) -> str:
    rows = _select(records, study="wiener")
    names = sorted({r["model"] for r in rows})
    models = ", ".join(f"{m}: {_fmt(_median(records, study='wiener', model=m))}" for m in names)
    floor = next((r["theory_nmse"] for r in rows if r["theory_nmse"] is not None), None)
    return f"{models} (best linear filter, theory: {_fmt(floor)})."


def _by_length(records: Rows, study: str) -> str:
    keys = sorted({(r["target"], r["model"], r["width"]) for r in _select(records, study=study)})
    parts = [f"{t} {m} w{w}: {_lengths(records, study=study, target=t, model=m, width=w)}" for t, m, w in keys]
    return "; ".join(parts) + "."


def findings(records: Rows) -> dict[str, str]:
    """One paragraph per study that ran, with the measured numbers, for the report."""
    writers = {
        "causality": _causality, "width": _width, "memory": _memory, "wiener": _wiener,
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
