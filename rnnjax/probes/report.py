"""The universal-approximation report: formatting and plotting helpers the studies use, and the assembly of their
paragraphs, tables and figures into report.md.

Every study (:class:`rnnjax.probes.studies.StudyPlan`) writes its own paragraph, short-answer sentences and figures
and says which of its model classes contain which; this module never names a target or a model. It adds what
holds across studies: the convergence column (:data:`rnnjax.probes.results.CONVERGENCE_RULE`), the nested-class
check (a larger class worse than a smaller one beyond both intervals is an optimisation failure), the rows below
an optimum that binds them (a bug), and the 95% intervals.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rnnjax.analysis.plots import new_figure, save_figure
from rnnjax.probes.results import (
    CONVERGENCE_RULE,
    Row,
    Summary,
    by_key,
    inversions,
    median_interval,
    relative_half_widths,
    summarise,
)
from rnnjax.probes.statistics import over_seeds

__all__ = ["fmt", "with_interval", "cite", "plot_vs", "plot_lengths", "figure", "study_table", "violations",
           "failures", "answer", "sections"]  # fmt: skip

# --------------------------------------------------------------------------- numbers and citations


def fmt(value) -> str:
    """3 significant digits; '-' for None; 'diverged' for NaN or infinity (a diverged run is a result)."""
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return "diverged"
    return f"{value:.3g}" if isinstance(value, (float, np.floating)) else str(value)


def theory_text(lower, upper) -> str:
    """'x' for an exact value, '[lower, upper]' for a band, '>= lower' for a bound, '-' for none."""
    if lower is None and upper is None:
        return "-"
    if upper is None:
        return f">= {fmt(lower)}"
    return fmt(upper) if lower is None or np.isclose(lower, upper) else f"[{fmt(lower)}, {fmt(upper)}]"


def with_interval(rows: Sequence[Row]) -> str:
    """'median [low, high]' of the test NMSE over the rows (seeds); '-' when there are none."""
    if not rows:
        return "-"
    median, low, high = median_interval(rows)
    note = over_seeds(row.nmse_test for row in rows).note()
    return f"{fmt(median)}{note}" if not np.isfinite(median) else f"{fmt(median)} [{fmt(low)}, {fmt(high)}]{note}"


def median_of(rows: Sequence[Row], field: str = "nmse_test") -> float | None:
    """The median over seeds, a diverged seed ranked worst (:func:`rnnjax.probes.statistics.over_seeds`)."""
    summary = over_seeds(getattr(row, field) for row in rows)
    return summary.median if summary.seeds else None


def lengths_text(rows: Sequence[Row]) -> str:
    """'T a, 2T b, 10T c': medians at the training length and the longer test lengths."""
    fields = (("T", "nmse_test"), ("2T", "nmse_test_2x"), ("10T", "nmse_test_long"))
    return ", ".join(f"{name} {fmt(median_of(rows, field))}" for name, field in fields)


def label(item: Row | Summary) -> str:
    """'target/model w<width> L<depth> D<delay>' (depth only when > 1)."""
    depth = f" L{item.depth}" if item.depth > 1 else ""
    return f"{item.target}/{item.model} w{item.width}{depth} D{item.delay}"


def cite(items: Iterable[Row | Summary]) -> str:
    """'[rows: study: target/model w<widths> D<delay>; ...]': the table rows a sentence rests on, the widths of one
    (target, model, depth, delay) joined."""
    widths: dict[tuple, list[int]] = {}
    for item in items:
        depth = f" L{item.depth}" if item.depth > 1 else ""
        key = (item.study, f"{item.target}/{item.model}", f"{depth} D{item.delay}")
        widths.setdefault(key, [])
        if item.width not in widths[key]:
            widths[key].append(item.width)
    studies: dict[str, list[str]] = {}
    for (study, name, tail), sizes in widths.items():
        studies.setdefault(study, []).append(f"{name} w{','.join(map(str, sorted(sizes)))}{tail}")
    return "[rows: " + " | ".join(f"{study}: {'; '.join(names)}" for study, names in studies.items()) + "]" if (
        studies) else "[rows: none]"


def quoted(rows: Sequence[Row]) -> str:
    """``'median [interval] [rows: ...]'``: a measured number and where it comes from."""
    return f"{with_interval(rows)} {cite(rows)}"


# --------------------------------------------------------------------------- figures


def _floor(values) -> np.ndarray:
    """Clip to 1e-16 so that exact zeros show on log axes."""
    return np.maximum(np.asarray(values, np.float64), 1e-16)


def plot_vs(summaries: Sequence[Summary], axis, x: str, label_fields=("target", "model"), log_x: bool = False):
    """Median NMSE (line) and best (dots) vs ``x`` per series, with the theory value (dashed) or band (shaded)."""
    for name, series in sorted(by_key(summaries, *label_fields).items()):
        series = sorted(series, key=lambda s: getattr(s, x))
        xs = [getattr(s, x) for s in series]
        (line,) = axis.plot(xs, _floor([s.median for s in series]), "o-", label=" ".join(map(str, name)))
        axis.plot(xs, _floor([s.best for s in series]), ".", color=line.get_color())
        if series[0].theory_nmse is not None:
            upper, lower = _floor([s.theory_nmse for s in series]), _floor([s.theory_nmse_lower for s in series])
            if np.allclose(upper, lower):
                axis.plot(xs, upper, "--", color=line.get_color(), alpha=0.8)
            else:
                axis.fill_between(xs, lower, upper, color=line.get_color(), alpha=0.15)
    axis.set_yscale("log")
    trained = [s.best for s in summaries if s.best > 0]
    if trained:  # exact-zero theory values would otherwise stretch the axis to 1e-16
        axis.set_ylim(bottom=max(1e-16, min(trained) / 30))
    if log_x:
        axis.set_xscale("log", base=2)
    _axes(axis, x, "test NMSE")


def _axes(axis, x_label: str, y_label: str) -> None:
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


def plot_lengths(rows: Sequence[Row], axis) -> None:
    """Median NMSE at T, 2T and 10T per (target, model)."""
    for (target, model), group in sorted(by_key(rows, "target", "model").items()):
        fields = ("nmse_test", "nmse_test_2x", "nmse_test_long")
        values = [median_of(group, field) for field in fields]
        values = [np.nan if value is None else value for value in values]
        axis.plot([1, 2, 10], _floor(np.minimum(values, 1e6)), "o-", label=f"{target} {model}")
    axis.set_xscale("log")
    axis.set_yscale("log")
    _axes(axis, "test length / training length", "test NMSE (median over seeds)")


def plot_bars(summaries: Sequence[Summary], axis) -> None:
    """Median test NMSE per model (bars), best seed (dots) and the theory (red dashes)."""
    names = [s.model for s in summaries]
    axis.bar(names, _floor([s.median for s in summaries]), alpha=0.7)
    axis.plot(names, _floor([s.best for s in summaries]), "k.")
    for i, summary in enumerate(summaries):
        if summary.theory_nmse is not None:
            axis.hlines(summary.theory_nmse, i - 0.4, i + 0.4, colors="red", linestyles="--")
    axis.set_yscale("log")
    axis.set_ylabel("test NMSE")


def figure(path: pathlib.Path, panels: int, draw: Callable[[list], None], title: str) -> str:
    """A figure of ``panels`` axes side by side, drawn by ``draw(axes)`` and saved; returns its file name."""
    drawn = new_figure(figsize=(5.5 * panels, 4.2))
    draw(list(drawn.subplots(1, panels, squeeze=False)[0]))
    drawn.suptitle(title)
    return save_figure(drawn, path, dpi=110).name


# --------------------------------------------------------------------------- tables and checks


def study_table(rows: Sequence[Row], columns: Sequence[tuple[str, str]] = ()) -> str:
    """Markdown: per (target, model, width, depth, delay) the median test NMSE over seeds with its 95% interval,
    the best seed, NMSE at 10T, the theory, the study's ``columns`` (row field, title), then the convergence
    columns: median train NMSE, class optimum, optimisation gap (best - optimum) and converged."""
    lines = []
    keyed = sorted(zip(summarise(rows), by_key(rows).values()), key=lambda pair: pair[1][0].key)
    for summary, group in keyed:
        longs = [row.nmse_test_long for row in group if row.nmse_test_long is not None]
        optimum = "-" if summary.class_optimum is None else _optimum_text(summary)
        converged = {None: "-", True: "yes", False: "**no**"}[summary.converged]
        cells = [summary.target, summary.model, summary.width, summary.depth, summary.delay,
                 f"{fmt(summary.median)} [{fmt(summary.median_low)}, {fmt(summary.median_high)}]"
                 + (f" ({summary.diverged} of {summary.seeds} seeds diverged)" if summary.diverged else ""),
                 fmt(summary.best),
                 fmt(over_seeds(longs).median) if longs else "-",
                 theory_text(summary.theory_nmse_lower, summary.theory_nmse),
                 *(fmt(getattr(group[0], field)) for field, _ in columns),
                 fmt(summary.train_median), optimum, fmt(summary.gap), converged]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    names = ["target", "model", "width", "depth", "delay", "NMSE test, median [95% interval]", "best",
             "NMSE at 10T (median)", "theory", *(title for _, title in columns), "NMSE train (median)",
             "class optimum", "gap (best - optimum)", "converged"]  # fmt: skip
    return "\n".join(["| " + " | ".join(names) + " |", "|" + "---|" * len(names), *lines])


def _optimum_text(summary: Summary) -> str:
    return f"{fmt(summary.class_optimum)} ({summary.class_optimum_kind})"


def _binding(row: Row) -> list[tuple[str, float]]:
    """The optima no model of the row's kind can beat: its study's lower theory, the causal floor (binds every
    model), and an exact class optimum."""
    found = [("theory_nmse_lower", row.theory_nmse_lower), ("causal_floor", row.causal_floor)]
    if row.class_optimum_kind == "exact":
        found.append(("class_optimum", row.class_optimum))
    return [(name, value) for name, value in found if value is not None]


def violations(rows: Sequence[Row], tolerance: float = 1e-9) -> list[str]:
    """Rows whose test NMSE lies below an optimum that binds them beyond the 95% interval: each one is an error
    (a wrong floor, a leak between train and test, or a broken metric)."""
    found = []
    for row in rows:
        for name, value in _binding(row):
            if row.nmse_test_high < value - tolerance:
                found.append(
                    f"{row.study}/{label(row)} seed {row.seed}: test NMSE {row.nmse_test:.4g} (95% interval up to "
                    f"{row.nmse_test_high:.4g}) is below {name} {value:.4g}"
                )
    return found


def failures(plan, rows: Sequence[Row]) -> list[tuple[Summary, Summary]]:
    """(larger, smaller) class pairs of one study where the larger is worse beyond both intervals."""
    return inversions(summarise(rows), plan.contains) if plan.contains is not None else []


def failure_text(pairs: Sequence[tuple[Summary, Summary]]) -> str:
    parts = [f"{label(large)} {fmt(large.median)} [{fmt(large.median_low)}, {fmt(large.median_high)}] above "
             f"{label(small)} {fmt(small.median)} [{fmt(small.median_low)}, {fmt(small.median_high)}]"
             for large, small in pairs]  # fmt: skip
    return (
        f"**Optimisation failures (nested classes):** {len(pairs)} larger model class(es) worse than a class they "
        f"contain, beyond both intervals, so a statement about the optimiser, not the class: " + "; ".join(parts) + "."
    )


# --------------------------------------------------------------------------- the report


READING = (
    "The theory columns give the optimum that no training can beat: an exact value, or a band [lower, upper] "
    "where the exact optimum has no closed form (the upper end never rises with width: a smaller model embeds "
    "in a larger one). The class optimum is the best error of the exact model class trained (kind 'exact': "
    "reached by parameters certified with the model's own forward pass; 'bound': a lower bound); the gap is the "
    "best trained test NMSE minus it. Every test NMSE carries a 95% interval for its test-set sampling error "
    "(delta method over independent test sequences). A trained value above the class optimum shows an "
    "optimisation failure; an optimum above zero shows an expressivity or information limit; a trained value "
    "below a binding optimum beyond its interval would be a bug, and the report lists any such row. "
    f"Convergence rule: {CONVERGENCE_RULE}; a row that is not converged (or has no known optimum) supports no "
    "claim about its class, only about the optimiser."
)


def answer(plans: Mapping[str, Any], rows: Sequence[Row]) -> str:
    """The short answer: each study's own sentences (citing its rows), then what holds across the studies."""
    parts = [plan.answer(plan.rows(rows)) for plan in plans.values() if plan.answer and plan.rows(rows)]
    text = "**Short answer.** " + " ".join(part for part in parts if part)
    summaries = summarise(rows)
    known = [s for s in summaries if s.converged is not None]
    failed = [s for s in known if not s.converged]
    pairs = [pair for plan in plans.values() for pair in failures(plan, plan.rows(rows))]
    text += (
        f" Convergence: {len(known) - len(failed)} of the {len(known)} rows with a known class optimum converged "
        f"({len(failed)} not, which support no claim about their class: {cite(failed) if failed else 'none'}); "
        f"larger model classes worse than a class they contain beyond both intervals (optimisation failures, "
        f"listed in their sections): {len(pairs)}"
        + (f" {cite(large for large, _ in pairs)}." if pairs else ".")
    )
    widths, bad = relative_half_widths(rows), violations(rows)
    if widths.size:
        text += (
            f" 95% intervals of the test NMSEs: median relative half-width {100 * float(np.median(widths)):.1f}%, "
            f"{100 * float(np.mean(widths <= 0.02)):.0f}% of rows within +-2% (the widest, {100 * widths.max():.0f}%, "
            f"on tiny NMSEs with heavy-tailed per-sequence errors). Rows below a binding optimum beyond their "
            f"interval: {len(bad)}."
        )
    diverged = sum(not np.isfinite(row.nmse_test) for row in rows)
    text += (
        f" Diverged runs (NaN or infinite test NMSE): {diverged} of {len(rows)}; they are kept in results.json, shown "
        "as 'diverged' and ranked worst in every median over seeds."
    )
    return text + "\n\n" + READING + "\n"


def sections(plans: Mapping[str, Any], rows: Sequence[Row], extras, files, partial: Mapping[str, str]) -> list[str]:
    """One section per study that has rows: title, what it does, any partial note, its paragraph, its optimisation
    failures, its table and its figures."""
    lines = []
    for name, plan in plans.items():
        chosen = plan.rows(rows)
        if not chosen:
            continue
        lines += [f"## {plan.title}", "", plan.summary, ""]
        if name in partial:
            lines += [f"**Partial:** {partial[name]}", ""]
        if plan.findings is not None:
            lines += [f"**Measured:** {plan.findings(chosen, extras.get(name, {}))}", ""]
        pairs = failures(plan, chosen)
        if pairs:
            lines += [failure_text(pairs), ""]
        lines += [study_table(chosen, plan.columns), ""]
        lines += [f"![{figure_name}](plots/{file})" for figure_name, file in files.get(name, {}).items()] + [""]
    return lines


def make_plots(plans: Mapping[str, Any], rows: Sequence[Row], extras, plot_path) -> dict[str, dict[str, str]]:
    """Every study's figures: {study: {figure name: file name}}."""
    return {name: plan.plots(plan.rows(rows), extras.get(name, {}), plot_path)
            for name, plan in plans.items() if plan.plots is not None and plan.rows(rows)}  # fmt: skip

