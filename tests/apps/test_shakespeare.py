"""rnnjax.apps.shakespeare: streamed loss == one pass, seeds vmapped == each seed alone, crops, sampling, report."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.apps import shakespeare
from rnnjax.data.shakespeare import Corpus
from rnnjax.tasks.losses import cross_entropy
from rnnjax.training import loop, optimizers
from rnnjax.training.step import make_train_step

MODEL = shakespeare.CharModel(vocab_size=7, embed_size=4, hidden_size=8)


def _params(seeds: int):
    return jax.vmap(MODEL.init)(jax.random.split(jax.random.key(0), seeds))


def _seed(params, index):
    return jax.tree.map(lambda leaf: leaf[index], params)


def test_stream_loss_carries_the_state_like_one_pass():
    ids = np.random.default_rng(0).integers(0, MODEL.vocab_size, 3 * 4 * 5 + 7)
    params = _params(2)
    streamed = shakespeare.stream_loss(MODEL, params, ids, streams=3, chunk=5)
    rows = ids[:60].reshape(3, 20), ids[1:61].reshape(3, 20)
    for seed in range(2):
        logits, _ = MODEL.apply(_seed(params, seed), jnp.asarray(rows[0]))
        np.testing.assert_allclose(streamed[seed], float(cross_entropy(logits, jnp.asarray(rows[1]))), rtol=1e-5)
    assert not np.isclose(streamed[0], streamed[1])
    with pytest.raises(ValueError, match="ids must hold more than"):
        shakespeare.stream_loss(MODEL, params, ids[:15], streams=3, chunk=5)


def test_random_crops_are_contiguous_slices_inside_the_corpus():
    ids = jnp.arange(50)
    for seed in range(20):
        crops = np.asarray(shakespeare.random_crops(ids, jax.random.key(seed), 16, 9))
        assert (np.diff(crops, axis=1) == 1).all() and crops.min() >= 0 and crops.max() <= 49
    assert (np.asarray(shakespeare.random_crops(ids, jax.random.key(0), 4, 50)) == np.arange(50)).all()


def test_seeds_trained_together_match_each_seed_alone_and_see_different_crops():
    ids = jnp.asarray(np.random.default_rng(1).integers(0, MODEL.vocab_size, 400))
    loss_fn = shakespeare.make_loss(MODEL, batch_size=4, seq_length=10)
    optimizer = optimizers.make_optimizer(optimizers.OptimizerConfig(learning_rate=1e-2))
    states = loop.init_many(MODEL.init, optimizer, jax.random.split(jax.random.key(2), 2))
    together, metrics = loop.fit_many(loss_fn, optimizer, states, lambda step: ids, 3, progress=False)
    step = make_train_step(loss_fn, optimizer)
    for seed in range(2):
        alone = _seed(states, seed)
        for _ in range(3):
            alone, _ = step(alone, ids)
        for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(_seed(together.params, seed))):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)
    first_keys = [jax.random.fold_in(_seed(states, s).key, 0) for s in range(2)]
    crops = [np.asarray(shakespeare.random_crops(ids, key, 4, 11)) for key in first_keys]
    assert not np.array_equal(*crops)


def test_cold_sampling_is_greedy_decoding():
    params = _seed(_params(1), 0)
    prompt = np.array([1, 2, 3])
    sampled = shakespeare.sample(MODEL, params, prompt, jax.random.key(3), length=6, temperature=1e-6)
    apply = jax.jit(MODEL.apply)
    logits, carry = apply(params, jnp.asarray(prompt)[None])
    greedy = []
    for _ in range(6):
        greedy.append(int(jnp.argmax(logits[0, -1])))
        logits, carry = apply(params, jnp.asarray([[greedy[-1]]]), carry)
    assert sampled.tolist() == greedy


def test_evaluate_scores_each_seed_and_reports_the_seed_summary():
    rng = np.random.default_rng(4)
    corpus = Corpus(rng.integers(0, 7, 500).astype(np.int32), rng.integers(0, 7, 4200).astype(np.int32), "abcdefg")
    quick = shakespeare.ShakespeareConfig.quick()
    config = dataclasses.replace(quick, seeds=3, final_eval_chars=4200, prompt="ab", sample_length=5,
                                 temperatures=(0.5,), target_nats=math.log(7) - 0.01)  # fmt: skip
    params = _params(3)
    trained = shakespeare.Trained(params, steps=10, best_step=10, minutes=1.0, cpu_minutes=2.0)
    results = shakespeare.evaluate(config, MODEL, corpus, trained)
    per_seed = results["val_nats_per_char_per_seed"]
    for seed in range(3):
        alone = shakespeare.stream_loss(MODEL, jax.tree.map(lambda x: x[seed : seed + 1], params), corpus.val, 32, 128)
        np.testing.assert_allclose(per_seed[seed], alone[0], rtol=1e-6)
    summary = results["val_nats_per_char_summary"]
    assert summary["low"] < summary["mean"] < summary["high"] and np.isclose(summary["mean"], np.mean(per_seed))
    assert results["seeds_below_target"] == sum(loss <= math.log(7) - 0.01 for loss in per_seed)
    assert all(len(text) == 2 + 5 for text in results["samples"].values())
    report = shakespeare.report_markdown(config, results)
    assert report.count("\n| ") >= 3 and "3 seeds" in report and "of 3 seeds" in report
    (line,) = shakespeare.headline(results)
    assert line.startswith(f"held-out loss: {summary['mean']:.3f} nats/char +- ") and "10 steps in 1.0 min" in line
    (target,) = shakespeare.targets(config, results)
    below = results["seeds_below_target"]
    assert target.met == (below == 3) and f"on every seed ({below} of 3), within 30 CPU-minutes" in target.statement
    for target_nats, met, count in ((10.0, True, "(3 of 3)"), (0.1, False, "(0 of 3)")):  # above, below ln 7
        (target,) = shakespeare.targets(dataclasses.replace(config, target_nats=target_nats), results)
        assert target.met == met and f"<= {target_nats} nats/char on every seed {count}" in target.statement
