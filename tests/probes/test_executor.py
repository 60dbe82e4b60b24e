"""The probe executor: compile-ahead gives the results of a program compiled on the spot, one callback per group
in order, a stop between groups, and no compile left queued behind the loop."""

import time

import pytest

from rnnjax.probes import compiling, targets
from rnnjax.probes.compiling import Compiler
from rnnjax.probes.executor import execute, run_group
from rnnjax.probes.models import ModelSpec
from rnnjax.probes.planning import plan_groups
from rnnjax.probes.training import TrainConfig

TINY = TrainConfig(length=8, train_size=16, batch_size=8, steps=15, test_size=8, long_factors=(2,), dtype="float64",
                   fast_compile=True)  # fmt: skip


def _groups():
    target = targets.kernel_target("exp", targets.exponential_kernel(0.7, 32))
    specs = [ModelSpec("gru"), ModelSpec("linear"), ModelSpec("simple_tanh")]
    return plan_groups(target, specs, (3,), (0, 1), (0,), TINY, "s")


def test_groups_compiled_ahead_in_the_background_give_the_results_of_one_compiled_on_the_spot():
    """run_group(group, compiler, upcoming) compiles the upcoming groups' programs on background threads while the
    group runs; a later group takes its program once (then it is dropped) and gets the results of a program jitted
    on the spot; cancel forgets the rest."""
    first, second, third = _groups()
    compiler = Compiler()
    run_group(first, compiler, upcoming=(second, third))
    assert set(compiler.pending) == {second, third}
    ahead = run_group(second, compiler)
    assert set(compiler.pending) == {third}
    compiler.cancel()
    assert not compiler.pending
    jitted, arguments = compiling.program(second)
    _, metrics = jitted(*arguments)  # jitted on the spot, no compile ahead
    for index, record in enumerate(ahead.records):
        assert record.nmse_test == float(metrics["nmse_test"][index])
        assert record.nmse_train == float(metrics["nmse_train"][index])


def test_execute_calls_back_once_per_group_in_order_and_stops_when_asked():
    groups = _groups()
    seen = []
    assert execute(groups, on_group=lambda number, group, result: seen.append((number, group.id, result))) == 3
    assert [(number, group_id) for number, group_id, _ in seen] == [(i, g.id) for i, g in enumerate(groups)]
    assert all(len(result.records) == group.models for (_, _, result), group in zip(seen, groups))
    again = []
    ran = execute(groups, on_group=lambda number, group, result: again.append(result), stop=lambda: len(again) == 1)
    timeless = lambda records: [r.replace(seconds=0.0) for r in records]  # noqa: E731
    assert ran == 1 and timeless(again[0].records) == timeless(seen[0][2].records)  # the same numbers
    with pytest.raises(ValueError, match="ahead must be >= 0; got -1"):
        execute(groups, ahead=-1)


def test_an_error_in_a_callback_cancels_the_compiles_queued_behind_it():
    groups = _groups()
    compiler = Compiler()

    def fail(number, group, result):
        assert set(compiler.pending) == set(groups[1:])  # queued while the first group ran
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        execute(groups, on_group=fail, ahead=2, compiler=compiler)
    assert compiler.pending == {}  # the second and third group's compiles were cancelled


def test_cancel_waits_for_the_compiles_under_way():
    """A compile left running after cancel() would go on tracing and compiling beside the caller's next work (a
    whole-suite run that let it lost a worker to a segfault inside XLA); cancel returns only when none runs."""
    groups = _groups()
    compiler = Compiler()
    for group in groups:
        compiler.ahead(group)
    futures = list(compiler.pending.values())
    while not (futures[0].running() or futures[0].done()):
        time.sleep(0.001)
    compiler.cancel()
    assert compiler.pending == {}
    assert all(future.done() for future in futures)
    assert not futures[0].cancelled()  # it was under way, and was waited for


def test_run_group_alone_leaves_no_compile_behind(monkeypatch):
    """Without a compiler of the caller's, run_group's own compiles of the upcoming groups are over when it returns."""
    real, started, finished = compiling._compile, [], []

    def slow_compile(group):
        started.append(group)
        compiled = real(group)
        time.sleep(0.5)
        finished.append(group)
        return compiled

    monkeypatch.setattr(compiling, "_compile", slow_compile)
    groups = _groups()
    run_group(groups[0], upcoming=groups[1:])
    assert groups[0] in finished and sorted(map(id, started)) == sorted(map(id, finished))
