"""Date translation with an attention encoder-decoder: de/en/ja renderings -> ISO, and ISO -> German.

Sources are real CLDR renderings (babel) in several styles; whole years are held out for
test. Beam search at test time. Target: >= 99% exact match in both directions on every seed; each seed draws its
own held-out years, data order and initialisation, and the report gives per-seed numbers, their mean, spread and
95% t-interval, and a Wilson interval per seed.

ISO -> German copies the year digits through content-based attention. After 1500 steps (the old default) the copy
fails on held-out years with a repeated digit: the decoder, having copied one "9" of "1997", attends past the second
and writes "1977" (measured 2026-11-29, greedy, 1000 test dates: seed 0 96.6%, all errors in 1951 -> "1955"; seed 1
97.0% with 1500 steps even on training years 1000-2999, all errors 1997 -> "1977"). 3000 steps (as for to-ISO)
learned the copy: 100.0% on seeds 0 and 1. ``german_steps`` is therefore 3000. ``german_train_years`` can widen the
training years (1000-2999 minus the held-out ones: every digit in every year position); the test years stay in
1950-2049.

    python experiments/translate_dates.py [--quick] [--steps 3000] [--runs_root runs]
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import numpy as np
from matplotlib.figure import Figure

from rnnjax.analysis.plots import learning_curves
from rnnjax.core.cells import gru
from rnnjax.core.unroll import RNN
from rnnjax.data import dates
from rnnjax.tasks.seq2seq import Decoder, Seq2Seq
from rnnjax.training import stats
from rnnjax.training.config import RunConfig, RunField, cli, require_positive
from rnnjax.training.recipes import PrefixedRun, random_rows, train_model
from rnnjax.training.runs import Run
from rnnjax.training.train import OptimizerConfig

# (source, target) lengths in characters, <eos> included.
LENGTHS = {dates.Direction.TO_ISO: (32, 12), dates.Direction.ISO_TO_GERMAN: (12, 20)}


@dataclasses.dataclass(frozen=True)
class Config:
    """Date translation (de/en/ja -> ISO, ISO -> German) with attention and beam search."""

    num_train: int = 30000
    num_test: int = 3000
    num_test_years: int = 10
    embed_size: int = 32
    hidden_size: int = 64  # per encoder direction; the decoder has twice this
    attention: str = "luong"
    batch_size: int = 64
    steps: int = 3000
    german_steps: int = 3000  # the ISO -> German long form model (1500 fails on repeated year digits, see above)
    german_train_years: tuple[int, int] = (1950, 2049)  # training years of ISO -> German (held-out years excluded)
    seeds: int = 3  # seeds run + 0, 1, ...: each its own held-out years, data order and initialisation
    beam_width: int = 4
    optimizer: OptimizerConfig = OptimizerConfig(learning_rate=3e-3, warmup_steps=100, decay="cosine", decay_steps=3000)
    run: RunField = RunConfig()

    def __post_init__(self):
        require_positive(
            self, "num_train", "num_test", "num_test_years", "embed_size",
            "hidden_size", "batch_size", "steps", "german_steps", "beam_width", "seeds",
        )
        if self.seeds < 2:
            raise ValueError(f"seeds must be >= 2 for an interval over seeds; got {self.seeds}")

    @classmethod
    def quick(cls) -> "Config":
        optimizer = OptimizerConfig(learning_rate=1e-2, decay="cosine", decay_steps=40)
        return cls(num_train=800, num_test=120, hidden_size=16, embed_size=8, batch_size=32, steps=40,
                   german_steps=40, beam_width=2, seeds=2, optimizer=optimizer, run=RunConfig.quick())


def build(config: Config, source_vocab, target_vocab) -> Seq2Seq:
    decoder = Decoder(gru(), len(target_vocab), 2 * config.hidden_size, config.embed_size,
                      attention=config.attention, start_id=dates.BOS, end_id=dates.EOS)
    return Seq2Seq(RNN(gru(), config.hidden_size, bidirectional=True), decoder, vocab_size=len(source_vocab))


def loss_fn(model: Seq2Seq, params, batch, key):
    target_lengths = (batch["target"] != dates.PAD).sum(1)
    return model.loss(params, batch["source"], batch["source_lengths"], batch["target"], target_lengths), {}


def train(config: Config, run: Run, name: str, model: Seq2Seq, data: dict, steps: int, seed: int):
    key = jax.random.key(seed)
    optimizer = dataclasses.replace(config.optimizer, decay_steps=steps)
    return train_model(functools.partial(loss_fn, model), model.init(key, config.embed_size), optimizer,
                       random_rows(data, config.batch_size, seed), steps, key=key,
                       checkpoint_dir=run.path("checkpoints", name), save_every=max(steps // 3, 1),
                       run=PrefixedRun(run, name), description=name)


def decode_all(model: Seq2Seq, params, data, vocab, beam_width: int, chunk: int = 500) -> list[str]:
    """Decoded strings: greedy when beam_width == 0, else the best beam."""
    max_length = data["target"].shape[1]

    @jax.jit
    def run_chunk(source, lengths):
        if beam_width == 0:
            return model.greedy(params, source, lengths, max_length=max_length).tokens
        return model.beam_search(params, source, lengths, beam_width=beam_width, max_length=max_length).tokens[:, 0]

    out = []
    for start in range(0, len(data["source"]), chunk):
        tokens = run_chunk(data["source"][start : start + chunk], data["source_lengths"][start : start + chunk])
        out += [vocab.decode(row) for row in np.asarray(tokens)]
    return out


def accuracy_table(examples, predictions) -> dict[str, float]:
    """Exact match overall, per language, per style and per (language, style)."""
    hits = np.array([p == e.target for p, e in zip(predictions, examples)])
    table = {"overall": float(hits.mean())}
    for field in ("language", "style"):
        for value in sorted({getattr(e, field) for e in examples}):
            table[f"{field}={value}"] = float(hits[[getattr(e, field) == value for e in examples]].mean())
    for language in sorted({e.language for e in examples}):
        for style in sorted({e.style for e in examples}):
            chosen = [e.language == language and e.style == style for e in examples]
            if any(chosen):
                table[f"{language}|{style}"] = float(hits[chosen].mean())
    return table


def character_accuracy(examples, predictions) -> float:
    """Share of reference characters predicted at their position (what a quick run learns before exact matches)."""
    right = sum(sum(a == b for a, b in zip(e.target, p)) for e, p in zip(examples, predictions))
    return right / sum(len(e.target) for e in examples)


def direction(config: Config, run: Run, which: dates.Direction, steps: int, seed: int) -> dict:
    """One seed of one direction: train, then exact match (greedy, beam) on that seed's held-out years."""
    years = config.german_train_years if which is dates.Direction.ISO_TO_GERMAN else (dates.FIRST_YEAR, dates.LAST_YEAR)
    corpus = dates.make_date_corpus(seed, config.num_train, config.num_test, num_test_years=config.num_test_years,
                                    direction=which, train_years=years)
    source_vocab, target_vocab = dates.vocabularies(corpus)
    train_data, test_data = (dates.encode_pairs(split, source_vocab, target_vocab, *LENGTHS[which])
                             for split in (corpus.train, corpus.test))
    model = build(config, source_vocab, target_vocab)
    started = time.perf_counter()
    params = train(config, run, f"{which.value}/seed{seed}", model, train_data, steps, seed)
    seconds = time.perf_counter() - started
    greedy = decode_all(model, params, test_data, target_vocab, 0)
    beam = decode_all(model, params, test_data, target_vocab, config.beam_width)
    beam_one = decode_all(model, params, test_data, target_vocab, 1)
    examples = [{"source": e.source, "target": e.target, "beam": b} for e, b in zip(corpus.test[:12], beam)]
    errors = [{"source": e.source, "target": e.target, "beam": b} for e, b in zip(corpus.test, beam) if b != e.target]
    hits = sum(b == e.target for e, b in zip(corpus.test, beam))
    return {"seed": seed, "greedy": accuracy_table(corpus.test, greedy), "beam": accuracy_table(corpus.test, beam),
            "beam_wilson_95": stats.wilson_interval(hits, len(corpus.test)), "beam_errors": errors[:20],
            "beam1_equals_greedy": float(np.mean([a == b for a, b in zip(beam_one, greedy)])),
            "character_accuracy_greedy": character_accuracy(corpus.test, greedy),
            "test_years": corpus.test_years, "train_seconds": seconds, "examples": examples}


def plot_grid(run: Run, table: dict[str, float]) -> None:
    styles, languages = list(dates.STYLES), list(dates.LANGUAGES)
    grid = np.array([[table.get(f"{lang}|{style}", np.nan) for style in styles] for lang in languages])
    figure = Figure(figsize=(9, 2.8))
    axes = figure.subplots()
    image = axes.imshow(grid, vmin=min(0.9, np.nanmin(grid)), vmax=1.0, cmap="viridis")
    axes.set(xticks=range(len(styles)), xticklabels=styles, yticks=range(len(languages)), yticklabels=languages)
    for (i, j), value in np.ndenumerate(grid):
        axes.text(j, i, f"{value:.3f}", ha="center", va="center", color="w", fontsize=8)
    figure.colorbar(image)
    axes.set_title("exact match on held-out years (beam search)")
    figure.tight_layout()
    figure.savefig(run.plot_path("accuracy_by_language_style"), dpi=120)


def over_seeds(config: Config, run: Run, which: dates.Direction, steps: int) -> dict:
    """Every seed of one direction and the summaries (mean, spread, 95% t-interval) of its exact matches."""
    seeds = [direction(config, run, which, steps, config.run.seed + offset) for offset in range(config.seeds)]
    summaries = {f"{decoding}_exact_match": stats.seed_summary([s[decoding]["overall"] for s in seeds]).as_dict()
                 for decoding in ("greedy", "beam")}
    return {"seeds": seeds, **summaries, "beam_exact_match_min": min(s["beam"]["overall"] for s in seeds)}


def main(argv=None) -> dict:
    config = cli(Config, argv, presets={"quick": Config.quick})
    run = config.run.open("translate_dates", config)
    results = {"to_iso": over_seeds(config, run, dates.Direction.TO_ISO, config.steps),
               "iso_to_german": over_seeds(config, run, dates.Direction.ISO_TO_GERMAN, config.german_steps)}
    results["target_exact_match"] = 0.99  # on every seed, both directions
    results["target_met"] = all(results[name]["beam_exact_match_min"] >= 0.99 for name in ("to_iso", "iso_to_german"))
    run.write_results(results)
    plot_grid(run, results["to_iso"]["seeds"][0]["beam"])
    curves = [f"{name}/seed{config.run.seed}/train/loss" for name in ("to_iso", "iso_to_german")]
    learning_curves(run, curves, run.plot_path("loss"), log_y=True)
    run.write_report(report(config, results))
    return results


def seed_rows(results: dict) -> str:
    """One markdown row per (direction, seed): greedy, beam and the beam's Wilson interval."""
    rows = []
    for name in ("to_iso", "iso_to_german"):
        for seed in results[name]["seeds"]:
            low, high = seed["beam_wilson_95"]
            rows.append(f"| {name} | {seed['seed']} | {seed['test_years']} | {seed['greedy']['overall']:.4f} | "
                        f"{seed['beam']['overall']:.4f} | {low:.4f}-{high:.4f} |")
    return "\n".join(rows)


def summary_text(summary: dict) -> str:
    return stats.SeedSummary(**{k: v for k, v in summary.items() if k != "count"}).text()


def report(config: Config, results: dict) -> str:
    to_iso, german = results["to_iso"]["seeds"][0], results["iso_to_german"]["seeds"][0]
    rows = "\n".join(f"| {k} | {to_iso['greedy'][k]:.4f} | {v:.4f} |"
                     for k, v in to_iso["beam"].items() if "|" not in k)
    samples = "\n".join(f"| {e['source']} | {e['beam']} | {e['target']} |" for e in german["examples"][:6])
    errors = "\n".join(f"| {e['source']} | {e['beam']} | {e['target']} |"
                       for seed in results["iso_to_german"]["seeds"] for e in seed["beam_errors"][:3])
    return f"""# Date translation (seq2seq, {config.attention} attention, beam width {config.beam_width})

Exact match (beam) over {config.seeds} seeds, mean +- sample sd (95% t-interval over seeds):
- to ISO: {summary_text(results['to_iso']['beam_exact_match'])}
- ISO -> German long form: {summary_text(results['iso_to_german']['beam_exact_match'])}

| direction | seed | held-out years | greedy | beam | beam 95% Wilson |
|---|---|---|---|---|---|
{seed_rows(results)}

Target >= 0.99 on every seed in both directions: {'met' if results['target_met'] else 'NOT met'}.

Seed {to_iso['seed']}, held-out years (test only): {to_iso['test_years']}. Exact match on {config.num_test} test dates:

| split | greedy | beam |
|---|---|---|
{rows}

Beam width 1 gives the greedy output on {to_iso['beam1_equals_greedy']:.4f} (to ISO) and
{german['beam1_equals_greedy']:.4f} (to German) of the test dates.

| ISO | generated | reference |
|---|---|---|
{samples}

ISO -> German errors (up to 3 per seed):

| ISO | generated | reference |
|---|---|---|
{errors}

![grid](plots/accuracy_by_language_style.png) ![loss](plots/loss.png)
"""


if __name__ == "__main__":
    results = main()
    print({k: (v["beam_exact_match"] if isinstance(v, dict) else v) for k, v in results.items()})
