"""experiments/probe_task.py: --quick end to end, --report_only, a user's .npz, and bad input before anything."""

import json

import numpy as np
import pytest
from experiment_helpers import load

from rnnjax.apps import probe_task as app
from rnnjax.data import entities


def test_quick_runs_and_rebuilds_the_report(tmp_path):
    result = load("probe_task").main(["--quick", "--runs_root", str(tmp_path), "--quiet"])
    folder = tmp_path / "probe_task" / "quick"
    for name in ("config.json", "records.jsonl", "results.json", "report.md", "plots/delays.png", "plots/widths.png"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "config.json").read_text())["probe"]["steps"] < 100
    report = (folder / "report.md").read_text()
    assert "**Delay needed:**" in report and "**Causal gap:**" in report and "![delays](plots/delays.png)" in report
    assert {row["kind"] for row in result.results["rows"]} == {"unidirectional", "bidirectional"}
    records = (folder / "records.jsonl").read_text()
    rebuilt = load("probe_task").main(["--quick", "--runs_root", str(tmp_path), "--report_only", "--quiet"])
    assert rebuilt.headline == result.headline and rebuilt.results == result.results
    assert (folder / "records.jsonl").read_text() == records


def test_a_users_npz_with_bad_labels_fails_before_any_folder(tmp_path):
    inputs = np.random.default_rng(0).normal(size=(30, 5, 2))
    labels = np.zeros((30, 5), int)
    labels[7, 2] = 4
    np.savez(tmp_path / "mine.npz", inputs=inputs, outputs=labels, classes=3)
    with pytest.raises(ValueError, match=r"outputs: labels must lie in \[0, 3\) .* sequence 7 step 2 has 4"):
        load("probe_task").main(["--data", str(tmp_path / "mine.npz"), "--runs_root", str(tmp_path / "runs")])
    assert not (tmp_path / "runs").exists()


def test_data_or_demo_is_required(tmp_path):
    with pytest.raises(ValueError, match="give exactly one of --data my_task.npz or --demo"):
        load("probe_task").main(["--runs_root", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="--report_only needs a started run"):
        load("probe_task").main(["--demo", "entities", "--report_only", "--runs_root", str(tmp_path)])
    with pytest.raises(SystemExit):
        load("probe_task").main(["--demo", "entities", "--demo_size", "0", "--runs_root", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_entity_demo_encodes_words_and_keeps_the_corpus_test_split():
    data, split = app.entity_task(60, seed=0)
    corpus = entities.make_entity_corpus(0, num_train=48, num_test=12)
    assert data.aligned and data.classes == len(entities.TAGS) and data.size == len(corpus.train) + len(corpus.test)
    assert np.array_equal(split == 2, np.arange(data.size) >= len(corpus.train))
    first = corpus.train[0]
    np.testing.assert_allclose(data.inputs[0, : len(first.tokens)], [app.word_features(t) for t in first.tokens],
                               rtol=1e-6)  # fmt: skip
    assert [entities.TAGS[i] for i in data.outputs[0, : len(first.tags)]] == list(first.tags)
    assert np.array_equal(app.word_features("Teddy")[:5], np.eye(5)[1])  # capitalised shape
    np.testing.assert_array_equal(app.word_features("Teddy")[5:], app.word_features("teddy")[5:])


def test_date_demo_has_other_lengths():
    data, split = app.date_task(40, seed=0)
    assert not data.aligned and data.output_steps == 11 and np.all(data.output_lengths == 11)
    assert np.all(data.inputs.sum(-1)[np.arange(data.input_steps)[None] < data.input_lengths[:, None]] == 1)
    assert set(np.unique(split)) == {0, 1, 2}
