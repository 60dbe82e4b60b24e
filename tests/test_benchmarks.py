"""The benchmark scripts compare equal computations: vmapped == sequential, fit_many == 64 x fit."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import many  # noqa: E402
import xla_cpu_hang  # noqa: E402


def test_step_loop_vmapped_equals_sequential():
    result = many.step_loop(4, 5, 3, 2, models=3, repeats=1)
    assert result["max_loss_difference"] <= 1e-5  # the benchmark runs in float32
    assert result["flops_per_model_step"] == 3 * 2 * 4 * 5 * (1 + 3) * 4 * 3
    assert result["speedup"] > 0


def test_end_to_end_fit_many_equals_separate_fits():
    result = many.end_to_end(4, 5, 3, 2, models=3)
    assert result["max_final_loss_difference"] <= 1e-5


def test_fisher_exact_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for a, n_a, b, n_b in [(0, 10, 4, 10), (0, 44, 13, 32), (2, 6, 3, 6)]:
        expected = stats.fisher_exact([[b, n_b - b], [a, n_a - a]], alternative="greater").pvalue
        assert xla_cpu_hang.fisher_one_sided(a, n_a, b, n_b) == pytest.approx(expected, rel=1e-9)
