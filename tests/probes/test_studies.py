"""Studies of the probe: no trained value beats an optimum that binds it beyond its interval; theory bands are
monotone; each study's nesting; the convergence rule; a short answer that cites its rows and names no model the
run did not train."""

import dataclasses

import numpy as np
import pytest

from rnnjax.probes import report, runner, studies
from rnnjax.probes.executor import execute
from rnnjax.probes.results import RESULT_FIELDS, Row, inversions, summarise
from rnnjax.probes.studies import causality, depth, encoder_decoder


def run_in_memory(plans):
    """(rows, extras) of every study in ``plans``: the executor, then :func:`runner.collect` (the one finish)."""
    recorded = {}
    execute(runner.all_groups(plans), on_group=lambda _, group, result: recorded.update(
        {group.id: runner.group_record(group, result)}))  # fmt: skip
    rows, extras, _ = runner.collect(plans, recorded)
    return rows, extras


def make_row(**fields) -> Row:
    """A row with every field None (or 0) but those given."""
    base = {**dict.fromkeys(RESULT_FIELDS), "seed": 0, "depth": 1, "delay": 0, "width": 4, "bidirectional": False}
    return Row.from_json({**base, **fields})


QUICK_STUDIES = ("causality", "wiener", "encoder_decoder")


@pytest.fixture(scope="module")
def quick():
    """The quick versions of the studies with exact floors (causality: causal and time-invariant; Wiener;
    encoder-decoder, with its class optimum) and their plans."""
    plans = studies.plan(studies.ProbeConfig.quick(), only=QUICK_STUDIES)
    rows, extras = run_in_memory(plans)
    return plans, rows, extras


def test_no_trained_value_beats_an_exact_optimum_beyond_its_interval(quick):
    _, rows, _ = quick
    assert {r.study for r in rows} == set(QUICK_STUDIES)
    assert report.violations(rows) == []
    checked = [r for r in rows if r.theory_nmse_lower is not None and r.theory_nmse_lower > 0.05]
    assert len(checked) >= 4  # the check has floors well above 0 to bite on


def test_records_carry_intervals_and_the_study_floors(quick):
    _, rows, extras = quick
    for row in rows:
        assert row.nmse_test_low <= row.nmse_test <= row.nmse_test_high
    reversal = [r for r in rows if r.study == "causality" and r.target == "reversal"]
    assert all(r.time_invariant_floor >= r.causal_floor for r in reversal)
    encoder_decoder = [r for r in rows if r.study == "encoder_decoder" and r.target == "reversal"]
    assert all(r.rank_floor == pytest.approx(1 - r.width / 8) for r in encoder_decoder)
    linear = [r for r in rows if r.study == "encoder_decoder" and r.class_optimum_kind == "exact"]
    assert {r.target for r in linear} == {"reversal", "lowpass_geometric0.7", "lowpass_power0.5"}
    for row in linear:  # the class optimum sits on or above the Eckart-Young floor: exactly on it for reversal
        assert row.class_optimum >= row.rank_floor - 1e-9 and row.theory_nmse_lower == row.rank_floor
        assert row.theory_nmse == row.class_optimum
        if row.target == "reversal":
            assert row.class_optimum == pytest.approx(1 - row.width / 8, abs=1e-6)
    assert extras["wiener"]["time_invariant_floor"] >= extras["wiener"]["time_varying_floor"]


def test_the_short_answer_cites_rows_and_names_no_model_the_run_did_not_train(quick):
    plans, rows, _ = quick
    text = report.answer(plans, rows).split("\n\n")[0]
    for plan in plans.values():
        part = plan.answer(plan.rows(rows)) if plan.answer else ""
        assert not part or "[rows: " in part  # every study sentence group rests on rows of the table
    assert not {"gru", "lstm", "simple_tanh"} & {r.model.split("-")[0] for r in rows}  # the quick run has none
    for cell in ("gru", "lstm", "tanh"):
        assert cell not in text.lower(), cell
    assert "reversal/linear_dense-encdec w4 D0" in text and "centred_sum4/linear w16 D0" in text
    assert "Convergence:" in text and "optimisation failures" in text


def test_report_sections_come_from_the_studies(quick, tmp_path):
    plans, rows, extras = quick
    files = report.make_plots(plans, rows, extras, lambda name: tmp_path / f"{name}.png")
    lines = report.sections(plans, rows, extras, files, {"wiener": "1 of 2 groups recorded."})
    text = "\n".join(lines)
    for plan in plans.values():
        assert f"## {plan.title}" in text and plan.summary in text
    assert "**Partial:** 1 of 2 groups recorded." in text and "class optimum" in text and "converged" in text
    assert set(files) == set(QUICK_STUDIES) and all((tmp_path / f).exists() for f in files["encoder_decoder"].values())


def test_violations_flags_a_value_below_a_binding_optimum():
    row = make_row(study="s", target="t", model="linear", readout="none", nmse_test=0.40, nmse_test_low=0.39,
                   nmse_test_high=0.41, theory_nmse_lower=0.44, causal_floor=0.44, time_invariant_floor=0.5)
    found = report.violations([row])
    assert len(found) == 2 and "causal_floor 0.44" in found[1]
    gru = row.replace(model="gru", readout="linear", theory_nmse_lower=0.3, causal_floor=0.3, nmse_test_high=0.45)
    assert report.violations([gru]) == []  # the time-invariant floor does not bind a nonlinear cell
    exact = gru.replace(class_optimum=0.5, class_optimum_kind="exact")
    assert "class_optimum 0.5" in report.violations([exact])[0]
    assert report.violations([exact.replace(class_optimum_kind="bound")]) == []  # a bound from above binds nothing


def _seeds(best, median, optimum, half_width=0.0, **fields):
    """Three seeds: best, median and a worse one, each with a +-half_width interval, and a class optimum."""
    values = (best, median, 2 * median + 1)
    return [make_row(study="s", target="t", model="m", seed=seed, nmse_test=v, nmse_test_low=v - half_width,
                     nmse_test_high=v + half_width, nmse_train=v, class_optimum=optimum, class_optimum_kind="exact",
                     **fields) for seed, v in enumerate(values)]  # fmt: skip


@pytest.mark.parametrize(
    ("best", "median", "half_width", "converged"),
    [(0.5099, 0.549, 0.0, True), (0.511, 0.52, 0.0, False), (0.52, 0.56, 0.0, False), (0.511, 0.52, 0.002, True),
     (0.0109, 0.011, 0.0, True), (0.0111, 0.0115, 0.0, False)],
)
def test_convergence_rule(best, median, half_width, converged):
    """Best within 2% (relative) or 1e-3 (absolute) of the optimum, median within 10%, from the interval's low end."""
    optimum = 0.5 if best > 0.1 else 0.01
    (summary,) = summarise(_seeds(best, median, optimum, half_width))
    assert summary.converged is converged and summary.gap == pytest.approx(best - optimum)
    assert summary.train_best == best and summary.train_median == median
    (unknown,) = summarise([row.replace(class_optimum=None) for row in _seeds(best, median, optimum)])
    assert unknown.converged is None and unknown.gap is None


def test_a_larger_class_worse_beyond_both_intervals_is_an_optimisation_failure():
    cells = {"lin-encdec": ("linear_dense", encoder_decoder.Architecture.ENCODER_DECODER),
             "gru-encdec": ("gru", encoder_decoder.Architecture.ENCODER_DECODER),
             "gru-attn": ("gru", encoder_decoder.Architecture.ATTENTION)}  # fmt: skip

    def summary(model, width, median, half_width=0.01):
        rows = [make_row(study="s", target="t", model=model, width=width, nmse_test=median, nmse_train=median,
                         nmse_test_low=median - half_width, nmse_test_high=median + half_width)]
        return summarise(rows)[0]

    contains = lambda a, b: encoder_decoder.contains(cells, a, b)  # noqa: E731
    plain, attention, wide = summary("gru-encdec", 2, 0.38), summary("gru-attn", 2, 0.48), summary("gru-encdec", 4, 0.3)
    assert contains(attention, plain) and contains(wide, plain) and contains(summary("gru-attn", 4, 0.1), plain)
    assert not contains(plain, attention) and not contains(summary("lin-encdec", 4, 0.1), plain)
    assert inversions([plain, attention, wide], contains) == [(attention, plain)]
    close = summary("gru-attn", 2, 0.395, half_width=0.02)  # worse, but within the intervals: not flagged
    assert inversions([plain, close], contains) == []


def test_depth_and_direction_nesting():
    def summary(**fields):
        base = dict(study="s", target="t", model="m", nmse_test=0.1, nmse_test_low=0.1, nmse_test_high=0.1,
                    nmse_train=0.1)  # fmt: skip
        return summarise([make_row(**{**base, **fields})])[0]

    shallow, deep = summary(model="relu", depth=1, width=4), summary(model="relu-L3", depth=3, width=4)
    assert depth.contains(deep, shallow) and depth.contains(summary(model="relu", width=16), shallow)
    assert not depth.contains(shallow, deep) and not depth.contains(summary(model="relu-L3", depth=3, width=2), shallow)
    uni, bi = summary(model="gru", delay=0), summary(model="gru-bi", delay=0)
    assert causality.contains(bi, uni) and not causality.contains(uni, bi)
    assert not causality.contains(bi, summary(model="gru", delay=2))  # a delayed model sees later outputs
    assert causality.contains(summary(model="linear-bi"), summary(model="linear"))


def test_rows_round_trip_through_json_and_unknown_fields_are_refused():
    row = make_row(study="s", target="t", model="m", nmse_test=0.5, losses=[1.0, 0.5])
    assert Row.from_json(row.to_json()) == row and row.losses == (1.0, 0.5)
    with pytest.raises(ValueError, match=r"unknown fields \['nmse_tset'\]"):
        Row.from_json({**row.to_json(), "nmse_tset": 0.5})


@pytest.mark.parametrize("study", ["width", "memory"])
def test_theory_band_upper_end_never_rises_with_width(study):
    config = studies.ProbeConfig(order_widths=(1, 2, 3, 4, 6), memory_widths=(1, 2, 3, 4, 8, 16))
    plan = studies.STUDIES[study](config)
    names = {target.name for group in plan.groups for target in group.targets}
    widths = sorted({group.spec.width for group in plan.groups})
    rows = [make_row(target=name, width=width) for name in names for width in widths]
    finished, _ = plan.finish(rows, [{} for _ in plan.groups])
    for name in names:
        ordered = sorted((r for r in finished if r.target == name), key=lambda r: r.width)
        uppers, lowers = [r.theory_nmse for r in ordered], [r.theory_nmse_lower for r in ordered]
        assert np.all(np.diff(uppers) <= 0), (name, uppers)
        assert np.all(np.asarray(lowers) <= np.asarray(uppers) + 1e-15)


def test_only_names_known_studies():
    with pytest.raises(ValueError, match="only must name studies among"):
        studies.plan(dataclasses.replace(studies.ProbeConfig.quick()), only=("nope",))


def test_a_diverged_seed_ranks_worst_and_is_counted():
    rows = [make_row(study="s", target="t", model="m", seed=seed, nmse_test=value, nmse_test_low=value,
                     nmse_test_high=value, nmse_train=value) for seed, value in enumerate((0.2, float("nan"), 0.1))]
    (summary,) = summarise(rows)
    assert summary.diverged == 1 and summary.best == 0.1 and summary.median == 0.2  # NaN above 0.2, not dropped
    assert summary.train_median == 0.2 and summary.train_best == 0.1


def test_a_lower_bound_proves_convergence_when_reached_and_nothing_otherwise():
    reached = summarise([row.replace(class_optimum_kind="bound") for row in _seeds(0.501, 0.52, 0.5)])[0]
    above = summarise([row.replace(class_optimum_kind="bound") for row in _seeds(0.7, 0.8, 0.5)])[0]
    assert reached.converged is True and above.converged is None and above.gap == pytest.approx(0.2)


class _Found:
    def __init__(self, nmse):
        self.nmse, self.kind, self.method = nmse, "exact", "stand-in"


def test_the_encoder_decoder_class_optimum_is_computed_once_per_linear_group_and_fills_the_linear_rows():
    calls = []

    def optimum(target, spec, width, length):
        calls.append((target.name, spec.name, width, length))
        return _Found(0.5 + width / 100)

    config = studies.ProbeConfig.quick()
    plan = encoder_decoder.plan(config, optimum=optimum)
    rows, extras = run_in_memory({"encoder_decoder": plan})
    linear_targets = {"reversal", "lowpass_geometric0.7", "lowpass_power0.5"}
    assert sorted(calls) == sorted((name, "linear_dense-encdec", 4, 8) for name in linear_targets)
    for row in rows:
        if row.target in linear_targets:
            assert (row.class_optimum, row.class_optimum_kind, row.theory_nmse) == (0.54, "exact", 0.54)
            assert row.theory_nmse_lower == row.rank_floor
        else:  # sorting: the best affine map bounds every linear model from below
            floor = extras["encoder_decoder"]["sorting_affine_floor"]
            assert (row.class_optimum, row.class_optimum_kind, row.theory_nmse_lower) == (floor, "bound", floor)
    assert extras["encoder_decoder"]["sorting_affine_floor"] == pytest.approx(0.12506, abs=1e-4)


def test_citations_join_the_widths_of_one_model_and_name_each_study_once():
    rows = [make_row(study="s", target="t", model="m", width=w) for w in (4, 2, 4)]
    rows += [make_row(study="s", target="u", model="m", width=8, depth=3, delay=2),
             make_row(study="r", target="t", model="m")]
    assert report.cite(rows) == "[rows: s: t/m w2,4 D0; u/m w8 L3 D2 | r: t/m w4 D0]"
    assert report.cite([]) == "[rows: none]"


def test_two_exact_fits_that_differ_by_rounding_are_not_an_inversion():
    def summary(width, value):
        row = make_row(study="s", target="t", model="m", width=width, nmse_test=value, nmse_test_low=value * 0.98,
                       nmse_test_high=value * 1.02, nmse_train=value)
        return summarise([row])[0]

    small, rounding, worse = summary(4, 2.8e-32), summary(6, 9.9e-15), summary(8, 2e-6)
    from rnnjax.probes.studies.base import wider

    assert inversions([small, rounding], wider) == [] and inversions([small, worse], wider) == [(worse, small)]


@pytest.mark.parametrize(("config", "restarts"), [(studies.ProbeConfig(), 4), (studies.ProbeConfig.full(), 16)],
                         ids=["default", "full"])  # fmt: skip
def test_encoder_decoder_budgets(config, restarts):
    """Study 7 trains its linear encoder-decoders with the config's restarts and the L-BFGS polish, every other model
    on NONLINEAR_SCALE times the sequences and steps; no group keeps the plain study budget."""
    plan = encoder_decoder.plan(config, optimum=None)
    base = config.train(length=config.encoder_decoder_length)
    is_linear = lambda g: (g.spec.name == encoder_decoder.LINEAR_SPEC.name  # noqa: E731
                           and not any(t.name.startswith("pooling") for t in g.targets))  # fmt: skip
    linear = [g for g in plan.groups if is_linear(g)]
    others = [g for g in plan.groups if not is_linear(g)]
    assert len(linear) == len(config.encoder_decoder_widths)
    assert linear and others
    for group in linear:
        assert group.config.restarts == config.encoder_decoder_linear_restarts
        assert group.config.lbfgs_steps == encoder_decoder.LINEAR_BUDGET["lbfgs_steps"] > 0
        assert group.config.train_size == encoder_decoder.LINEAR_BUDGET["train_size"]
    for group in others:
        assert group.config.train_size == encoder_decoder.NONLINEAR_SCALE["train_size"] * base.train_size
        assert group.config.steps == encoder_decoder.NONLINEAR_SCALE["steps"] * base.steps
        assert group.config.restarts == config.restarts and group.config.lbfgs_steps == 0
    assert config.encoder_decoder_linear_restarts == restarts


def test_encoder_decoder_linear_restarts_is_checked():
    with pytest.raises(ValueError, match="--probe.encoder_decoder_linear_restarts must be"):
        studies.ProbeConfig(encoder_decoder_linear_restarts=0)
