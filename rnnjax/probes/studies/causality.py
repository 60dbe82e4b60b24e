"""Study 1: non-causal linear targets; the causal (information) and time-invariant (linear RNN) floors vs the
output delay D, uni- and bidirectional models."""

from __future__ import annotations

import dataclasses
import functools

from rnnjax.probes import report, targets, theory
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.results import Row, Summary, by_key, select, summarise
from rnnjax.probes.studies.base import LINEAR, ProbeConfig, StudyPlan, fill, same_except

NAME = "causality"
CENTRED, REVERSAL = targets.centred_sum(4), targets.reversal()
LINEAR_BI = dataclasses.replace(LINEAR, bidirectional=True, label="linear-bi")


def family() -> list[targets.Target]:
    return [CENTRED, targets.anticausal_filter(0.8, 64), REVERSAL]


def plan(config: ProbeConfig) -> StudyPlan:
    """Unidirectional models at every delay, bidirectional ones, and (optionally) the many-to-one counterparts."""
    train = config.train()
    uni = [LINEAR] + [ModelSpec(cell, width=config.width) for cell in config.causal_cells]
    groups = plan_groups(family(), uni, seeds=config.seeds, delays=config.delays, config=train, study=NAME)
    if config.bidirectional:
        bi = [LINEAR_BI] + [ModelSpec(cell, bidirectional=True) for cell in config.bidirectional_cells]
        groups += plan_groups(family(), bi, widths=(config.width,), seeds=config.seeds, config=train, study=NAME)
    if config.many_to_one:  # one label per sequence: a larger test set for the same interval
        last = [targets.as_many_to_one(t) for t in family()]
        test = config.train(test_size=4 * config.test_size)
        groups += plan_groups(last, uni, widths=(config.width,), seeds=config.seeds, config=test, study=NAME)
    return StudyPlan(
        tuple(groups), functools.partial(finish, config),
        title="1. Causal vs non-causal many-to-many: information and time-invariance floors",
        summary="Non-causal linear targets; causal (information) and time-invariant (linear RNN) floors vs delay D.",
        findings=findings, plots=plots, answer=answer,
        columns=(("causal_floor", "causal floor"), ("time_invariant_floor", "time-invariant floor")),
        contains=contains,
    )  # fmt: skip


def finish(config: ProbeConfig, rows: list[Row], group_extras: list[dict]) -> tuple[list[Row], dict]:
    """Both floors per row; the theory is the time-invariant floor for linear models, the causal floor otherwise.

    A linear RNN from a zero state is time-invariant, so no width takes it below the Toeplitz projection's error;
    a nonlinear model (time-varying in effect) is bounded only by the information floor. Many-to-one: 0.
    """
    known = {target.name: target for target in family()}
    floors, out = {}, []
    for row in rows:
        target, delay = known.get(row.target), None if row.bidirectional else row.delay
        if target is None:  # many-to-one: the last label sees the whole sequence
            out.append(row.replace(causal_floor=0.0, time_invariant_floor=0.0))
            continue
        if (target.name, delay) not in floors:
            causal = 0.0 if delay is None else theory.causal_floor(target, config.length, delay)
            floors[(target.name, delay)] = (causal, theory.time_invariant_floor(target, config.length, delay))
        causal, invariant = floors[(target.name, delay)]
        out.append(row.replace(causal_floor=causal, time_invariant_floor=invariant))
    return fill(out, lambda row: row.time_invariant_floor if row.readout == "none" else row.causal_floor), {}


def unidirectional_name(model: str) -> str:
    """The unidirectional model a bidirectional one extends ('gru-bi' -> 'gru', 'linear-bi' -> 'linear')."""
    return LINEAR.name if model == LINEAR_BI.name else model.removesuffix("-bi")


def contains(larger: Summary, smaller: Summary) -> bool:
    """A bidirectional model holds the unidirectional one of its cell at D=0 (its backward half at zero)."""
    return (larger.model != smaller.model and unidirectional_name(larger.model) == smaller.model
            and smaller.delay == 0 and same_except(larger, smaller, "model"))  # fmt: skip


def _causal_nonlinear(rows: list[Row]) -> list[str]:
    """The nonlinear unidirectional models of the run (the causal cells)."""
    return sorted({row.model for row in rows if not row.bidirectional and row.readout != "none"})


def _unidirectional(rows: list[Row]) -> list[Row]:
    return [row for row in rows if not row.bidirectional and row.target in {t.name for t in family()}]


def findings(rows: list[Row], extras) -> str:
    if not select(rows, target=CENTRED.name, model=LINEAR.name, delay=0):
        return "(the centred moving sum did not run.)"
    where = {"target": CENTRED.name}
    delays = sorted({row.delay for row in select(rows, model=LINEAR.name, **where)})
    floor = select(rows, model=LINEAR.name, delay=0, **where)[0].causal_floor
    clauses = [  # each clause only when the run trained that model
        *((f"a causal {model} at", select(rows, model=model, delay=0, **where)) for model in _causal_nonlinear(rows)),
        (f"with output delay D={delays[-1]}:", select(rows, model=LINEAR.name, delay=delays[-1], **where)),
        ("bidirectional:", select(rows, model=LINEAR_BI.name, **where)),
        ("many-to-one (last step):", select(rows, target=f"{CENTRED.name}@last", model=LINEAR.name)),
    ]
    text = (
        f"Centred moving sum (window 9): a causal linear RNN stops at NMSE "
        f"{report.quoted(select(rows, model=LINEAR.name, delay=0, **where))} (exact floor {report.fmt(floor)})"
        + "".join(f"; {name} {report.quoted(chosen)}" for name, chosen in clauses if chosen) + "."
    )
    return text + " " + _reversal(rows, delays)


def _reversal(rows: list[Row], delays: list[int]) -> str:
    """Reversal: the causal floor falls with D and vanishes bidirectionally; the time-invariant one stays high."""
    chosen = select(rows, target=REVERSAL.name)
    if not chosen:
        return ""
    first = lambda **where: select(chosen, **where)[0]  # noqa: E731
    bi_models = sorted({row.model for row in chosen if row.bidirectional} - {LINEAR_BI.name})
    nonlinear_bi = "; ".join(f"{m} {report.quoted(select(chosen, model=m))}" for m in bi_models)
    linear_bi = select(chosen, model=LINEAR_BI.name)  # absent when the run has no bidirectional models
    return (
        f"Reversal (not time-invariant): causal floor {report.fmt(first(delay=0).causal_floor)} at D=0 and "
        f"{report.fmt(first(delay=delays[-1]).causal_floor)} at D={delays[-1]} (0 bidirectionally), but the "
        f"time-invariant floor that binds every linear RNN is "
        f"{report.fmt(first(model=LINEAR.name, delay=0).time_invariant_floor)} (D=0) and "
        f"{report.fmt(linear_bi[0].time_invariant_floor) if linear_bi else '-'} bidirectionally; trained: linear D=0 "
        f"{report.quoted(select(chosen, model=LINEAR.name, delay=0))}, linear-bi {report.quoted(linear_bi)}"
        + (f", nonlinear bidirectional: {nonlinear_bi}" if nonlinear_bi else "")
        + ". A bidirectional model removes the information floor, not the time-invariance one."
    )


def answer(rows: list[Row]) -> str:
    """The aligned many-to-many answer: what the causal and time-invariant floors imply, from this run's rows."""
    centred = select(rows, target=CENTRED.name, delay=0)
    linear = select(centred, model=LINEAR.name)
    if not linear:
        return ""
    nonlinear = "".join(f", {m} {report.quoted(select(centred, model=m))}" for m in _causal_nonlinear(centred))
    text = (
        "*Aligned many-to-many* (one output per input step): for a non-causal target no unidirectional model of "
        f"this run beats the causal (information) floor: centred moving sum, floor "
        f"{report.fmt(linear[0].causal_floor)}, trained linear RNN {report.quoted(linear)}{nonlinear}. "
        + _delay_sentence(rows)
    )
    reversal_bi = select(rows, target=REVERSAL.name, model=LINEAR_BI.name)
    if reversal_bi:
        text += (
            " A linear RNN is also *time-invariant*, and for a target that is not (reversal) a second floor binds it: "
            f"{report.fmt(reversal_bi[0].time_invariant_floor)} for the best bidirectional linear model (trained: "
            f"{report.quoted(reversal_bi)}), although the information floor is 0 there; so \"bidirectional "
            "removes the floor\" holds only for time-invariant targets."
        )
        reversal = select(rows, target=REVERSAL.name)
        others = sorted({row.model for row in reversal if row.bidirectional} - {LINEAR_BI.name})
        if others:
            text += " Nonlinear bidirectional models at the same width: " + ", ".join(
                f"{m} {report.quoted(select(rows, target=REVERSAL.name, model=m))}" for m in others) + "."
    return text


def _delay_sentence(rows: list[Row]) -> str:
    """What the output delay and the bidirectional model did to that floor, where they ran."""
    linear = select(rows, target=CENTRED.name, model=LINEAR.name)
    largest = max(row.delay for row in linear)
    parts = []
    if largest > 0:
        delayed = select(linear, delay=largest)
        parts.append(f"an output delay D={largest} (covering the look-ahead of 4) takes the linear RNN to "
                     f"{report.quoted(delayed)}")  # fmt: skip
    bi = select(rows, target=CENTRED.name, model=LINEAR_BI.name)
    if bi:
        parts.append(f"a bidirectional linear RNN to {report.quoted(bi)}")
    return ("That floor goes away with the look-ahead: " + "; ".join(parts) + ".") if parts else ""


def plots(rows: list[Row], extras, plot_path) -> dict[str, str]:
    """One panel per target: unidirectional models vs delay D with the exact floor of each."""
    uni = summarise(_unidirectional(rows))
    names = sorted({s.target for s in uni})
    if not names:
        return {}

    def draw(axes):
        for axis, (name, chosen) in zip(axes, sorted(by_key(uni, "target").items())):
            report.plot_vs(chosen, axis, "delay")
            axis.set_title(name[0], fontsize=9)

    title = ("Study 1: unidirectional models vs delay D (dashed: exact floor; linear: time-invariant floor, others: "
             "causal floor)")  # fmt: skip
    return {NAME: report.figure(plot_path(NAME), len(names), draw, title)}
