"""The tasks tour: two of its tasks in --quick mode."""

import json

from experiment_helpers import check_ending, load

from rnnjax.apps.tasks_tour import TASKS, Task, task_line


def test_tasks_tour_quick_on_two_tasks(tmp_path):
    """Two of the seven tasks (the whole quick tour takes minutes): 30 Adam steps each."""
    argv = ["--quick", "--tasks", "tagging_bi", "ctc", "--runs_root", str(tmp_path), "--run_name", "quick"]
    outcome = load("tasks_tour").main(argv)
    check_ending(outcome, tmp_path / "tasks_tour" / "quick")
    rows = outcome.results["rows"]
    assert json.loads((tmp_path / "tasks_tour" / "quick" / "results.json").read_text())["rows"] == rows
    assert outcome.headline == (task_line(rows[:1]), task_line(rows[1:]))  # one line per task: 1 and 2 metrics
    values = {(row["task"], row["metric"]): row["value"] for row in rows}
    expected_tasks = {TASKS[Task.TAGGING_BIDIRECTIONAL][0], TASKS[Task.CTC][0]}
    assert {task for task, _ in values} == expected_tasks
    # measured: 0.85 token accuracy (6 tags; the unidirectional tagger, which cannot see the next token, gets 0.21)
    assert values[("tagging, bidirectional: next token", "token accuracy")] > 0.5
    # measured: label error rates 0.21 (greedy) and 0.17 (prefix beam); an untrained model's are near 1
    assert values[("CTC: symbol runs", "label error rate")] < 0.5
    assert values[("CTC: symbol runs", "label error rate (prefix beam)")] < 0.5
