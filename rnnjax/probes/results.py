"""Results of the probe: one record per trained run (:data:`RESULT_FIELDS` and a few more) and the summary over
seeds of each (study, target, model, width, depth, delay)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from rnnjax.probes.planning import Group

RESULT_FIELDS = (
    "study", "target", "model", "width", "depth", "delay", "seed", "nmse_train", "nmse_test",
    "nmse_test_2x", "nmse_test_long", "theory_nmse", "theory_nmse_lower",
    "nmse_test_low", "nmse_test_high", "nmse_test_2x_low", "nmse_test_2x_high", "nmse_test_long_low",
    "nmse_test_long_high",
)  # fmt: skip


def group_records(group: Group, metrics: dict[str, np.ndarray], seconds: float) -> list[dict[str, Any]]:
    """One record per run of ``group`` from its host metrics (stacked along :attr:`Group.triples`)."""
    share = seconds / group.models
    return [_record(group, index, seed, delay, number, metrics, share)
            for number, (index, seed, delay) in enumerate(group.triples)]  # fmt: skip


def _record(group: Group, target_index: int, seed: int, delay: int, index: int, metrics, seconds) -> dict[str, Any]:
    spec, config = group.spec, group.config
    long = config.long_factors
    value = lambda name: float(metrics[name][index])  # noqa: E731
    losses = metrics["losses"][index]
    return {
        "study": group.study, "target": group.targets[target_index].name, "model": spec.name, "width": spec.width,
        "depth": spec.depth, "delay": delay, "seed": seed, "nmse_train": value("nmse_train"),
        "nmse_test": value("nmse_test"), "nmse_test_2x": value("nmse_test_2x") if 2 in long else None,
        "nmse_test_long": value(f"nmse_test_{long[-1]}x") if long else None,
        "nmse_test_low": value("nmse_test_low"), "nmse_test_high": value("nmse_test_high"),
        "nmse_test_2x_low": value("nmse_test_2x_low") if 2 in long else None,
        "nmse_test_2x_high": value("nmse_test_2x_high") if 2 in long else None,
        "nmse_test_long_low": value(f"nmse_test_{long[-1]}x_low") if long else None,
        "nmse_test_long_high": value(f"nmse_test_{long[-1]}x_high") if long else None,
        "theory_nmse": None, "theory_nmse_lower": None, "readout": spec.readout.value,
        "bidirectional": spec.bidirectional, "train_length": config.length, "seconds": seconds,
        "losses": [float(x) for x in losses[:: max(1, len(losses) // 50)]],
    }  # fmt: skip


def summarise(records: Sequence[dict[str, Any]], field: str = "nmse_test") -> list[dict[str, Any]]:
    """Best and median of ``field`` over seeds for each (study, target, model, width, depth, delay)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        key = tuple(record[k] for k in ("study", "target", "model", "width", "depth", "delay"))
        groups.setdefault(key, []).append(record)
    rows = []
    for key, group in groups.items():
        values = np.array([r[field] for r in group], np.float64)
        row = dict(zip(("study", "target", "model", "width", "depth", "delay"), key))
        row.update(best=float(np.nanmin(values)), median=float(np.nanmedian(values)), seeds=len(group))
        if group[0].get(f"{field}_low") is not None:  # 95% intervals: the best row's; the median row(s)' (mean)
            best = group[int(np.nanargmin(values))]
            middle = [group[i] for i in np.argsort(values)[(len(group) - 1) // 2 : len(group) // 2 + 1]]
            row.update(best_low=best[f"{field}_low"], best_high=best[f"{field}_high"],
                       median_low=float(np.mean([r[f"{field}_low"] for r in middle])),
                       median_high=float(np.mean([r[f"{field}_high"] for r in middle])))  # fmt: skip
        row["theory_nmse"] = group[0]["theory_nmse"]
        row["theory_nmse_lower"] = group[0]["theory_nmse_lower"]
        rows.append(row)
    return rows
