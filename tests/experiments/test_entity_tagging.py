"""Entity tagging: the --quick run (2 seeds per tagger)."""

from experiment_helpers import in_unit, logged, run_quick


def test_entity_tagging_quick(tmp_path):
    results, returned = run_quick("entity_tagging", tmp_path)
    assert returned.targets_met == results["target_met"] and len(returned.targets) == 1
    for tagger in ("unidirectional", "bidirectional"):
        per_seed = results[tagger]["per_seed"]
        assert len(per_seed) == 2 and all(in_unit(s["f1"]) and in_unit(s["ambiguous_accuracy"]) for s in per_seed)
    assert 0.5 <= results["chance_accuracy"] <= 1.0
    assert results["unidirectional_within_bound"]  # a left-to-right tagger cannot pass the one-tag-per-word bound
    # 60 steps (measured 2026-11-29): every seed's loss falls from ~1.55 to 0.68-0.90, the bidirectional tagger's
    # lower on each seed (0.68 vs 0.80, 0.78 vs 0.90): it sees the next word. A uniform guess costs ln 7 = 1.95.
    final = {}
    for tagger in ("unidirectional", "bidirectional"):
        for seed in range(2):
            losses = logged(tmp_path / "entity_tagging" / "quick", f"{tagger}/train/loss_run{seed}")
            assert losses[-1] < 0.7 * losses[0]
            final[tagger, seed] = losses[-1]
    assert all(final["bidirectional", seed] < final["unidirectional", seed] for seed in range(2))
