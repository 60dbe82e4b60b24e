"""The task probe's report: the four answers with intervals, tables and plots, from the floors and trained rows.

Rows are summarised per model (kind, family, width, delay) by the seed of least *validation* error (the test error
is never used to choose), with its test error and 95% interval, and the median test error over seeds. Every
comparison reads intervals: "A matches B" means A's test error is at most the upper end of B's interval; "A beats
B" means A's interval lies wholly below B's.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Sequence

import numpy as np

from rnnjax.analysis.plots import new_figure, save_figure
from rnnjax.training.runs import markdown_table

Rows = Sequence[dict[str, Any]]
KEY = ("kind", "model", "width", "delay")


def select(rows: Rows) -> list[dict[str, Any]]:
    """One row per (kind, model, width, delay): the seed of least validation error, plus the median test error."""
    grouped: dict[tuple, list[dict]] = {}
    for row in rows:
        grouped.setdefault(tuple(row[k] for k in KEY), []).append(row)
    out = []
    for group in grouped.values():
        chosen = min(group, key=lambda row: row["validation_error"])
        out.append({**chosen, "median_test_error": float(np.median([r["test_error"] for r in group])),
                    "seeds": len(group)})  # fmt: skip
    return out


def interval(row: dict[str, Any], field: str = "error", prefix: str = "test_") -> str:
    """'0.0123 [0.0110, 0.0136]'."""
    value, low, high = (row[f"{prefix}{field}{suffix}"] for suffix in ("", "_low", "_high"))
    return f"{value:.4g} [{low:.4g}, {high:.4g}]"


def _floor(floors: Rows, floor: str, delay: int | None = None, rank: int | None = None) -> dict | None:
    found = [f for f in floors if f["floor"] == floor and f["delay"] == delay and f["rank"] == rank]
    return found[0] if found else None


def comparable_floor(row: dict[str, Any], floors: Rows) -> dict | None:
    """The linear floor a trained row is measured against: causal at its delay, non-causal, rank m, or linear."""
    kind = row["kind"]
    if kind == "unidirectional":
        return _floor(floors, "causal", delay=row["delay"])
    if kind == "bidirectional":
        return _floor(floors, "noncausal")
    if kind == "encoder_decoder":
        return _floor(floors, "rank", rank=row["width"])
    return _floor(floors, "linear")


def matches(error: float, reference_high: float) -> bool:
    """A matches B: A's error is at most the upper end of B's 95% interval."""
    return error <= reference_high


def beats(row: dict[str, Any], floor: dict[str, Any]) -> bool:
    """The trained row's test interval lies wholly below the floor's."""
    return row["test_error_high"] < floor["error_low"]


def _floor_text(floor: dict[str, Any]) -> str:
    return f"{floor['error']:.4g} [{floor['error_low']:.4g}, {floor['error_high']:.4g}]"


# --------------------------------------------------------------------------- the four answers


def _pick(selected: Rows, **where) -> list[dict]:
    return [row for row in selected if all(row[k] == v for k, v in where.items())]


def causal_gap(selected: Rows, floors: Rows, width: int) -> str:
    """Unidirectional D = 0 vs bidirectional at the same width, per cell, and the linear floors' gap."""
    parts = []
    for uni in _pick(selected, kind="unidirectional", delay=0):
        bi = _pick(selected, kind="bidirectional", cell=uni["cell"], width=width)
        if bi:
            gap = uni["test_error"] - bi[0]["test_error"]
            parts.append(f"{uni['model']} w{width}: unidirectional D=0 {interval(uni)} vs bidirectional "
                         f"{interval(bi[0])}, gap {gap:.4g}")  # fmt: skip
    causal, noncausal = _floor(floors, "causal", delay=0), _floor(floors, "noncausal")
    if causal and noncausal:
        parts.append(f"linear floors: causal D=0 {_floor_text(causal)} vs non-causal {_floor_text(noncausal)}, gap "
                     f"{causal['error'] - noncausal['error']:.4g}")  # fmt: skip
    return "; ".join(parts) + "."


def delay_needed(errors: dict[int, float], reference_high: float) -> int | None:
    """The smallest delay D whose error matches the reference (<= the upper end of its interval); None if none."""
    return next((delay for delay in sorted(errors) if matches(errors[delay], reference_high)), None)


def floor_delay_needed(floors: Rows) -> int | None:
    """The smallest D at which the causal linear floor matches the non-causal one."""
    noncausal = _floor(floors, "noncausal")
    causal = {f["delay"]: f["error"] for f in floors if f["floor"] == "causal"}
    return delay_needed(causal, noncausal["error_high"]) if noncausal and causal else None


def delay_answer(selected: Rows, floors: Rows, width: int) -> str:
    parts = []
    for cell in sorted({row["cell"] for row in _pick(selected, kind="unidirectional")}):
        errors = {row["delay"]: row["test_error"] for row in _pick(selected, kind="unidirectional", cell=cell)}
        bi = _pick(selected, kind="bidirectional", cell=cell, width=width)
        if not bi:
            continue
        found = delay_needed(errors, bi[0]["test_error_high"])
        best = min(errors, key=errors.get)
        parts.append(f"{cell}: D = {found}" if found is not None else
                     f"{cell}: no delay up to {max(errors)} matches the bidirectional model (closest: D = {best}, "
                     f"{errors[best]:.4g} vs {interval(bi[0])})")  # fmt: skip
    linear = floor_delay_needed(floors)
    if _floor(floors, "noncausal"):
        parts.append(f"linear floors: D = {linear}" if linear is not None else
                     "linear floors: no delay up to the largest tried (the look-ahead exceeds max_delay)")  # fmt: skip
    return "; ".join(parts) + "."


def width_needed(errors: dict[int, tuple[float, float]]) -> int:
    """The smallest width whose error matches the best width's (<= the upper end of the best one's interval)."""
    best = min(errors, key=lambda width: errors[width][0])
    return next(width for width in sorted(errors) if matches(errors[width][0], errors[best][1]))


def width_answer(selected: Rows) -> str:
    parts = []
    for kind in ("bidirectional", "attention", "encoder_decoder"):
        for model in sorted({row["model"] for row in _pick(selected, kind=kind)}):
            rows = _pick(selected, kind=kind, model=model)
            errors = {row["width"]: (row["test_error"], row["test_error_high"]) for row in rows}
            if len(errors) > 1:
                found = width_needed(errors)
                parts.append(f"{model}: width {found} (widths {sorted(errors)}; wider is no better beyond the "
                             f"interval)" if found != max(errors) else f"{model}: still improving at the widest, "
                             f"{max(errors)}")  # fmt: skip
    return "; ".join(parts) + "." if parts else "only one width was trained."


def bottleneck_answer(selected: Rows, floors: Rows) -> str:
    """Per vector width m: encoder-decoder vs attention vs the linear rank-m floor."""
    parts = []
    for plain in sorted(_pick(selected, kind="encoder_decoder"), key=lambda row: (row["cell"], row["width"])):
        attention = _pick(selected, kind="attention", cell=plain["cell"], width=plain["width"])
        rank = _floor(floors, "rank", rank=plain["width"])
        text = f"m={plain['width']} ({plain['cell']}): encoder-decoder {interval(plain)}"
        if attention:
            binds = not matches(plain["test_error"], attention[0]["test_error_high"])
            text += f", attention {interval(attention[0])} ({'binds' if binds else 'does not bind'})"
        if rank:
            text += f", linear rank-m floor {_floor_text(rank)}"
        parts.append(text)
    return "; ".join(parts) + "." if parts else ""


def floors_answer(selected: Rows, floors: Rows) -> str:
    """Which rows beat their linear floor beyond both intervals (where the nonlinearity pays)."""
    winners, compared = [], 0
    for row in selected:
        floor = comparable_floor(row, floors)
        if floor is None:
            continue
        compared += 1
        if beats(row, floor):
            winners.append(_label(row))
    if not winners:
        return f"none of the {compared} trained rows beats its linear floor beyond the intervals."
    return f"{len(winners)} of {compared} rows beat their linear floor: {', '.join(winners)}."


def _label(row: dict[str, Any]) -> str:
    delay = f" D={row['delay']}" if row["kind"] == "unidirectional" else ""
    return f"{row['model']} w{row['width']}{delay}"


# --------------------------------------------------------------------------- tables, plots, report.md


def model_table(selected: Rows, floors: Rows, labels: bool) -> str:
    """One line per trained model: test error [95%], median over seeds, its linear floor and whether it beats it."""
    lines = []
    for row in selected:
        floor = comparable_floor(row, floors)
        line = {"kind": row["kind"], "model": row["model"], "width": row["width"],
                "delay": row["delay"] if row["kind"] == "unidirectional" else "", "test error [95%]": interval(row),
                "median over seeds": row["median_test_error"], "seeds": row["seeds"],
                "train error": row["train_error"]}  # fmt: skip
        if labels:
            line["test accuracy [95%]"] = interval(row, "accuracy")
        line["linear floor"] = _floor_text(floor) if floor else ""
        line["beats it"] = ("yes" if beats(row, floor) else "no") if floor else ""
        lines.append(line)
    # report-only on a folder whose records hold no trained group yet
    return markdown_table(lines, empty="No model trained yet: the records hold no trained group.")


def floor_table(floors: Rows, labels: bool) -> str:
    lines = []
    for floor in floors:
        line = {"floor": floor["floor"], "delay": "" if floor["delay"] is None else floor["delay"],
                "rank": "" if floor["rank"] is None else floor["rank"], "test error [95%]": _floor_text(floor),
                "penalty": floor["penalty"]}  # fmt: skip
        if labels:
            line["test accuracy [95%]"] = interval(floor, "accuracy", prefix="")
        lines.append(line)
    return markdown_table(lines, empty="No floor computed yet: the records hold none.")


def _errorbars(axis, xs, rows, label, prefix="test_", **style):
    values = np.array([r[f"{prefix}error"] for r in rows])
    spread = np.array([[v - r[f"{prefix}error_low"], r[f"{prefix}error_high"] - v] for v, r in zip(values, rows)]).T
    axis.errorbar(xs, values, yerr=spread, capsize=3, marker="o", label=label, **style)


def _finish(axis, xlabel: str, ylabel: str) -> None:
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_yscale("symlog", linthresh=1e-3)
    axis.legend(fontsize=8)


def plot_delays(axis, selected: Rows, floors: Rows, width: int, ylabel: str) -> None:
    """Unidirectional error vs delay D, the bidirectional model's interval as a band, the causal floors."""
    for cell in sorted({r["cell"] for r in _pick(selected, kind="unidirectional")}):
        rows = sorted(_pick(selected, kind="unidirectional", cell=cell), key=lambda r: r["delay"])
        _errorbars(axis, [r["delay"] for r in rows], rows, f"{cell} unidirectional")
        for bi in _pick(selected, kind="bidirectional", cell=cell, width=width):
            axis.axhspan(bi["test_error_low"], bi["test_error_high"], alpha=0.2, label=f"{cell} bidirectional w{width}")
    causal = sorted((f for f in floors if f["floor"] == "causal"), key=lambda f: f["delay"])
    if causal:
        _errorbars(axis, [f["delay"] for f in causal], causal, "linear causal floor", prefix="", linestyle="--",
                   color="black")  # fmt: skip
    _finish(axis, "output delay D (steps of look-ahead)", ylabel)


def plot_widths(axis, selected: Rows, floors: Rows, ylabel: str) -> None:
    """Error vs width (bidirectional or encoder-decoder vector width m), with the matching linear floors."""
    for kind in ("bidirectional", "encoder_decoder", "attention"):
        for model in sorted({r["model"] for r in _pick(selected, kind=kind)}):
            rows = sorted(_pick(selected, kind=kind, model=model), key=lambda r: r["width"])
            _errorbars(axis, [r["width"] for r in rows], rows, model)
    ranks = sorted((f for f in floors if f["floor"] == "rank"), key=lambda f: f["rank"])
    if ranks:
        _errorbars(axis, [f["rank"] for f in ranks], ranks, "linear rank-m floor", prefix="", linestyle="--",
                   color="black")  # fmt: skip
    for name in ("noncausal", "linear"):
        floor = _floor(floors, name)
        if floor:
            axis.axhline(floor["error"], color="gray", linestyle=":", label=f"linear {name} floor")
    axis.set_xscale("log", base=2)
    _finish(axis, "width (vector width m for encoder-decoders)", ylabel)


def make_plots(selected: Rows, floors: Rows, width: int, labels: bool,
               plot_path: Callable[[str], pathlib.Path]) -> dict[str, str]:  # fmt: skip
    """delays.png (aligned tasks) and widths.png; returns {name: file name}."""
    ylabel = "test cross-entropy (nats per label)" if labels else "test NMSE"
    files = {}
    panels = {"delays": lambda axis: plot_delays(axis, selected, floors, width, ylabel),
              "widths": lambda axis: plot_widths(axis, selected, floors, ylabel)}  # fmt: skip
    for name, draw in panels.items():
        if name == "delays" and not _pick(selected, kind="unidirectional"):
            continue
        figure = new_figure(figsize=(6.0, 4.2))
        draw(figure.subplots())
        files[name] = save_figure(figure, plot_path(name)).name
    return files


def answers(selected: Rows, floors: Rows, width: int) -> dict[str, str]:
    """The report's answers, by question (only those the task's shape asks)."""
    out = {}
    if _pick(selected, kind="unidirectional") or _floor(floors, "noncausal"):
        out["Causal gap"] = causal_gap(selected, floors, width)
        out["Delay needed"] = delay_answer(selected, floors, width)
    out["Width needed"] = width_answer(selected)
    if _pick(selected, kind="encoder_decoder"):
        out["Does a width-m vector bind?"] = bottleneck_answer(selected, floors)
    out["Where the nonlinearity pays"] = floors_answer(selected, floors)
    return out


def markdown(title: str, facts: str, selected: Rows, floors: Rows, width: int, labels: bool,
             files: dict[str, str]) -> str:  # fmt: skip
    """report.md: the answers, the rule for reading them, the model and floor tables, the plots."""
    error = "cross-entropy (nats per label)" if labels else "NMSE"
    lines = [f"# Task probe: {title}", "", facts, "", "## Answers", ""]
    lines += [f"- **{question}:** {text}" for question, text in answers(selected, floors, width).items()]
    lines += ["", f"Errors are test {error} with 95% intervals (delta method over test sequences). A model's row is "
              "its seed of least validation error. 'Matches' = error at most the upper end of the other's interval; "
              "'beats' = intervals disjoint. Delays, widths and bottlenecks are judged on trained models, which "
              "carry their optimisation gap; the linear floors are exact fits.", ""]  # fmt: skip
    lines += ["## Trained models", "", model_table(selected, floors, labels), "", "## Linear floors", "",
              floor_table(floors, labels), ""]  # fmt: skip
    lines += [f"![{name}](plots/{file})" for name, file in files.items()]
    return "\n".join(lines) + "\n"
