"""Statistics for results over seeds and finite test sets, in plain Python (no SciPy at run time).

API:
    summary = seed_summary([0.981, 0.985, 0.978])   # mean, sample std, 95% Student-t interval over seeds
    low, high = wilson_interval(hits=1046, count=1066)  # 95% Wilson score interval of one accuracy
    p = mcnemar_exact(only_first=31, only_second=18)    # two-sided exact McNemar (binomial) p-value
    p = mcnemar_from_predictions(first_right, second_right)  # the same from per-item correctness
    compare_with_baseline(seed_right, baseline_right)   # seeds vs one baseline on the same test items
    student_t_quantile(0.975, degrees_of_freedom=2)      # 4.3027
    block_bootstrap(differences, block=72)             # mean of a time series, resampled in contiguous blocks
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence

import numpy as np

from rnnjax.checks import arguments


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """A metric over seeds: mean, sample standard deviation and a Student-t interval for the mean."""

    values: tuple[float, ...]
    mean: float
    standard_deviation: float
    low: float
    high: float
    confidence: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"values": list(self.values), "count": len(self.values)}

    @classmethod
    def from_dict(cls, stored: dict) -> "SeedSummary":
        """The inverse of :meth:`as_dict` (reads a results.json entry back)."""
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if k == "values" else v for k, v in stored.items() if k in fields})

    def text(self, digits: int = 4) -> str:
        """"0.9812 +- 0.0031 (95% CI 0.9735-0.9889, 3 seeds)"."""
        confidence = f"{100 * self.confidence:g}%"
        return (f"{self.mean:.{digits}f} +- {self.standard_deviation:.{digits}f} ({confidence} CI "
                f"{self.low:.{digits}f}-{self.high:.{digits}f}, {len(self.values)} seeds)")


def _continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction for the regularized incomplete beta function (Numerical Recipes betacf)."""
    tiny, numerator, denominator = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    denominator = 1.0 / (denominator if abs(denominator) > tiny else tiny)
    result = denominator
    for m in range(1, 500):
        for coefficient in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            denominator = 1.0 + coefficient * denominator
            denominator = 1.0 / (denominator if abs(denominator) > tiny else tiny)
            numerator = 1.0 + coefficient / numerator
            numerator = numerator if abs(numerator) > tiny else tiny
            result *= denominator * numerator
        if abs(denominator * numerator - 1.0) < 1e-15:
            break
    return result


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) = B(x; a, b) / B(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(value: float, degrees_of_freedom: float) -> float:
    """P(T <= t) = 1 - I_{nu/(nu+t^2)}(nu/2, 1/2) / 2 for t >= 0 (symmetric for t < 0)."""
    tail = 0.5 * regularized_beta(degrees_of_freedom / 2, 0.5, degrees_of_freedom / (degrees_of_freedom + value**2))
    return 1.0 - tail if value >= 0 else tail


def student_t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """t with P(T <= t) = probability, by bisection on the CDF."""
    arguments.real("probability", probability, minimum=0.0, maximum=1.0)
    arguments.positive_float("degrees_of_freedom", degrees_of_freedom)
    if not 0.0 < probability < 1.0:
        raise ValueError(f"probability must lie strictly inside (0, 1); got {probability}")
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, degrees_of_freedom)
    low, high = 0.0, 1.0
    while student_t_cdf(high, degrees_of_freedom) < probability:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if student_t_cdf(middle, degrees_of_freedom) < probability else (low, middle)
    return 0.5 * (low + high)


def seed_summary(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """mean +- t_{(1+c)/2, n-1} * s / sqrt(n) over n >= 2 seeds (s: sample standard deviation)."""
    values = tuple(float(v) for v in np.asarray(values, dtype=float).reshape(-1))
    if len(values) < 2:
        raise ValueError(f"values must hold at least 2 seeds for an interval; got {len(values)}")
    arguments.probability("confidence", confidence)
    mean, deviation = statistics.fmean(values), statistics.stdev(values)
    half_width = student_t_quantile((1.0 + confidence) / 2, len(values) - 1) * deviation / math.sqrt(len(values))
    return SeedSummary(values, mean, deviation, mean - half_width, mean + half_width, confidence)


def wilson_interval(hits: int, count: int, confidence: float = 0.95) -> tuple[float, float]:
    """(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) for p = hits / count."""
    arguments.positive_int("count", count)
    arguments.integer("hits", hits, minimum=0, maximum=count)
    arguments.probability("confidence", confidence)
    z = statistics.NormalDist().inv_cdf((1.0 + confidence) / 2)
    rate, scale = hits / count, 1.0 + z**2 / count
    center = rate + z**2 / (2 * count)
    half_width = z * math.sqrt(rate * (1.0 - rate) / count + z**2 / (4 * count**2))
    return max(0.0, (center - half_width) / scale), min(1.0, (center + half_width) / scale)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2)."""
    arguments.nonnegative_int("only_first", only_first)
    arguments.nonnegative_int("only_second", only_second)
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(only_first, only_second) + 1))
    return min(1.0, 2.0 * tail / 2**discordant)


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """Two classifiers on the same test items: who alone is right, and the exact McNemar p-value."""

    only_first: int
    only_second: int
    count: int
    p_value: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def mcnemar_from_predictions(first_right: Sequence[bool], second_right: Sequence[bool]) -> PairedComparison:
    """Counts the discordant items of two per-item correctness vectors and tests them with :func:`mcnemar_exact`."""
    first, second = np.asarray(first_right, bool), np.asarray(second_right, bool)
    arguments.has_shape("second_right", second, first.shape)
    only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
    return PairedComparison(only_first, only_second, int(first.size), mcnemar_exact(only_first, only_second))


def compare_with_baseline(seed_right, baseline_right, confidence: float = 0.95) -> dict:
    """Single models (one per seed) against one baseline on the same test items.

    Args:
      seed_right: [seeds, items] whether each seed's model gets each test item right (>= 2 seeds).
      baseline_right: [items] whether the baseline gets it right.

    Returns:
      ``accuracy`` (:func:`seed_summary` over the seeds' accuracies, as a dict), ``wilson_per_seed``,
      ``baseline_accuracy``, ``baseline_wilson`` and ``mcnemar_per_seed`` (:class:`PairedComparison` dicts), and
      ``beats_baseline``: every seed right on more items alone than the baseline, with McNemar p < 1 - confidence.
    """
    seeds, baseline = np.asarray(seed_right, bool), np.asarray(baseline_right, bool)
    if seeds.ndim != 2:
        raise ValueError(f"seed_right must be [seeds, items]; got shape {seeds.shape}")
    arguments.has_shape("baseline_right", baseline, seeds.shape[1:])
    paired = [mcnemar_from_predictions(right, baseline) for right in seeds]
    count = int(baseline.size)
    return {
        "accuracy": seed_summary(seeds.mean(-1), confidence).as_dict(),
        "wilson_per_seed": [wilson_interval(int(right.sum()), count, confidence) for right in seeds],
        "baseline_accuracy": float(baseline.mean()),
        "baseline_wilson": wilson_interval(int(baseline.sum()), count, confidence),
        "mcnemar_per_seed": [p.as_dict() for p in paired],
        "beats_baseline": all(p.only_first > p.only_second and p.p_value < 1.0 - confidence for p in paired),
    }


def block_bootstrap(
    differences: np.ndarray, block: int, draws: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> dict[str, float]:
    """Circular block bootstrap of mean(differences) over its last axis (a time series).

    Resamples ceil(n / block) blocks of ``block`` contiguous items (wrapping at the end) ``draws`` times; the
    same blocks for every row of ``differences: [..., n]``. Returns per row ``mean``, the percentile interval
    ``low``-``high`` and ``p_value``: the two-sided share of bootstrap means, centred on the observed mean,
    at least as far from it as the observed mean is from 0 ((hits + 1) / (draws + 1)).
    """
    differences = np.asarray(differences, np.float64)
    size = differences.shape[-1]
    arguments.integer("block", block, minimum=1, maximum=size)
    arguments.positive_int("draws", draws)
    arguments.probability("confidence", confidence)
    starts = np.random.default_rng(seed).integers(size, size=(draws, -(-size // block)))
    index = ((starts[:, :, None] + np.arange(block)) % size).reshape(draws, -1)[:, :size]
    means = differences[..., index].mean(-1)  # [..., draws]
    observed = differences.mean(-1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail], axis=-1)
    hits = (np.abs(means - observed[..., None]) >= np.abs(observed)[..., None]).sum(-1)
    p_value = (hits + 1) / (draws + 1)
    return {"mean": observed.tolist(), "low": low.tolist(), "high": high.tolist(), "p_value": p_value.tolist()}
