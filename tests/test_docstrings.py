"""Every public name of the top-level API and the main entry points of the subpackages has a docstring with an
``Examples:`` in doctest form and, where it takes or returns arrays, their shapes (``[batch, time, input]``); every
docstring example of their modules runs, so the examples cannot rot."""

import doctest
import importlib
import re

import pytest

import rnnjax

ENTRY_POINTS = {
    "rnnjax.training.step": ["TrainState", "init_state", "make_train_step"],
    "rnnjax.training.loop": ["fit", "init_many", "fit_many"],
    "rnnjax.training.optimizers": ["OptimizerConfig", "make_schedule", "make_optimizer"],
    "rnnjax.training.checkpoint": ["Checkpointer"],
    "rnnjax.tasks.ctc": ["ctc_loss", "collapse", "greedy_decode", "prefix_beam_search"],
    "rnnjax.tasks.losses": ["Reduction", "sequence_mask", "cross_entropy", "mse"],
    "rnnjax.tasks.seq2seq": ["Decoder", "Seq2Seq", "Seq2Seq.encode", "Seq2Seq.loss", "Seq2Seq.greedy"],
    "rnnjax.probes.sweep": ["sweep"],
    "rnnjax.probes.optimum": ["ClassOptimum", "SearchConfig", "class_optimum"],
    "rnnjax.probes.task": ["probe"],
}
"""Module -> the public names (``Class.method`` for methods) held to the rule besides ``rnnjax.__all__``."""

WITHOUT_ARRAYS = {
    # enums, configs and records: no array argument or result
    "Activation", "Backward", "GRUConvention", "LinearKind", "LinearInit", "Merge", "make_cell", "Reduction",
    "OptimizerConfig", "make_schedule", "make_optimizer", "ClassOptimum", "SearchConfig",
    # arrays only inside pytrees or callables the caller chooses
    "make_train_step", "fit", "Checkpointer",
}  # fmt: skip

SHAPE = re.compile(r"\[\]|\[(?:\.\.\., )?\*?[A-Za-z][A-Za-z_0-9]*(?:, [^\]\n]+)?\]")
"""A shape annotation such as ``[batch, time, input]``, ``[*batch]``, ``[..., time]`` or ``[]`` (a scalar)."""


def _resolve(module_name: str, qualified_name: str):
    target = importlib.import_module(module_name)
    for part in qualified_name.split("."):
        target = getattr(target, part)
    return target


def _public_names() -> list[tuple[str, str]]:
    names = [("rnnjax", name) for name in rnnjax.__all__]
    return names + [(module, name) for module, entries in ENTRY_POINTS.items() for name in entries]


def _modules() -> list[str]:
    defining = {getattr(rnnjax, name).__module__ for name in rnnjax.__all__}
    return sorted(defining | set(ENTRY_POINTS))


def test_the_top_level_api_is_covered_in_full():
    assert len(rnnjax.__all__) == 19
    assert {name for module, name in _public_names() if module == "rnnjax"} == set(rnnjax.__all__)


@pytest.mark.parametrize(("module", "name"), _public_names(), ids=lambda value: value)
def test_public_name_has_an_example_and_shapes(module, name):
    doc = _resolve(module, name).__doc__  # its own docstring: an Enum without one would show Enum's
    assert doc, f"{module}.{name} has no docstring"
    assert "Examples:" in doc and ">>>" in doc, f"{module}.{name}: no 'Examples:' section in doctest form"
    if name.split(".")[0] not in WITHOUT_ARRAYS:
        prose = doc.split("Examples:")[0]
        assert SHAPE.search(prose), f"{module}.{name}: no shape annotation such as [batch, time, input]"


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    tests = [test for test in finder.find(module, module_name) if test.examples]
    assert tests, f"{module_name} has no docstring example"
    for test in tests:
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
