"""One result per seed and their summary over seeds, shared by the apps that train one model per seed.

The decoding apps (translate_dates, caption_digits) decode each seed's test set greedily, with a beam and with a
beam of width 1; a seed's result holds a score per decoding and how often width 1 reproduced greedy decoding
(it must: a check of the beam search). The summary gives each metric's mean, sd and t-interval over seeds, and
the worst seed where a target is stated "on every seed". Table cells give an estimate with its interval.

    decoded = {name: decode(width) for name, width in decoding_widths(beam_width).items()}
    per_seed = [decoded_seed(seed, {n: d[i] for n, d in decoded.items()}, score) for i, seed in enumerate(seeds)]
    metrics = {"beam_exact_match": lambda seed: seed["beam"]["exact_match"]}
    results = summarize_seeds(per_seed, metrics, minimum=("beam_exact_match",))   # summary and worst seed
    with_interval(0.93, (0.90, 0.95))   # '0.9300 (0.9000-0.9500)', a table cell
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rnnjax.training import stats

DECODINGS = ("greedy", "beam")


def decoding_widths(beam_width: int) -> dict[str, int]:
    """Beam width per decoding: greedy (0), the configured beam, and width 1 (the check against greedy)."""
    return {"greedy": 0, "beam": beam_width, "beam1": 1}


def agreement(first: Sequence[Any], second: Sequence[Any]) -> float:
    """Share of positions where two equally long sequences of outputs agree."""
    if len(first) != len(second) or not first:
        raise ValueError(f"second must hold as many outputs as first ({len(first)} > 0); got {len(second)}")
    return sum(a == b for a, b in zip(first, second)) / len(first)


def decoded_seed(seed: int, decoded: Mapping[str, Sequence[Any]], score: Callable[[Sequence[Any]], Any]) -> dict:
    """One seed: ``score`` of its greedy and beam outputs, and how often beam width 1 gave the greedy output.

    Args:
      seed: the seed, stored as ``"seed"``.
      decoded: outputs per decoding of :func:`decoding_widths` (``greedy``, ``beam``, ``beam1``), in test order.
      score: the outputs of one decoding -> what the result keeps under that decoding's name.
    """
    missing = {*DECODINGS, "beam1"} - set(decoded)
    if missing:
        raise ValueError(f"decoded must hold greedy, beam and beam1 outputs; missing {sorted(missing)}")
    scores = {decoding: score(decoded[decoding]) for decoding in DECODINGS}
    return {"seed": seed, **scores, "beam1_equals_greedy": agreement(decoded["beam1"], decoded["greedy"])}


def summarize_seeds(per_seed: Sequence[dict], metrics: Mapping[str, Callable[[dict], float]],
              minimum: Sequence[str] = ()) -> dict:  # fmt: skip
    """``{"seeds": per_seed}``, each metric's seed summary (mean, sd, 95% t-interval) and ``<metric>_min`` for
    the metrics named in ``minimum`` (a target met "on every seed" is a target met by the worst seed)."""
    unknown = set(minimum) - set(metrics)
    if unknown:
        raise ValueError(f"minimum must name metrics of {sorted(metrics)}; got {sorted(unknown)}")
    out: dict[str, Any] = {"seeds": list(per_seed)}
    for name, value in metrics.items():
        values = [float(value(seed)) for seed in per_seed]
        out[name] = stats.seed_summary(values).as_dict()
        if name in minimum:
            out[f"{name}_min"] = min(values)
    return out


def with_interval(value: float, interval: Sequence[float], *, percent: bool = False) -> str:
    """A table cell: '0.9300 (0.9000-0.9500)', or with ``percent`` '93.00% (90.00-95.00)'."""
    low, high = interval
    if percent:
        return f"{100 * value:.2f}% ({100 * low:.2f}-{100 * high:.2f})"
    return f"{value:.4f} ({low:.4f}-{high:.4f})"
