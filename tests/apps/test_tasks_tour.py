"""The tasks-tour app: the tour's keys, rows and report, and its Adam loop (no task is trained here)."""

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.apps import tasks_tour
from rnnjax.apps.tasks_tour import Task
from rnnjax.training.config import RunConfig


def config(tasks=tuple(Task), **fields):
    fields = {"num_steps": 200, "learning_rate": 0.1, **fields}
    return tasks_tour.TourConfig(tasks=tasks, run=RunConfig(seed=3), **fields)


def test_a_task_gets_the_same_key_whichever_tasks_run(monkeypatch):
    seen = {}

    def recorder(task):
        return lambda c, key: seen.setdefault(task, []).append(jax.random.key_data(key)) or {"value": jnp.float32(1)}

    monkeypatch.setattr(tasks_tour, "TASKS", {task: (task.value, recorder(task)) for task in Task})
    all_rows = tasks_tour.tour(config())
    only_rows = tasks_tour.tour(config(tasks=(Task.CAPTIONS, Task.CTC)))
    assert [row["task"] for row in all_rows] == [task.value for task in Task]
    assert [row["task"] for row in only_rows] == ["ctc", "captions"]  # TASKS order, not the config's
    for task in (Task.CTC, Task.CAPTIONS):
        np.testing.assert_array_equal(seen[task][0], seen[task][1])
    assert len({tuple(np.ravel(keys[0])) for keys in seen.values()}) == len(Task)  # every task its own key


def test_rows_hold_floats_and_the_report_a_table():
    rows = tasks_tour.rows_of("CTC", {"label error rate": jnp.float32(0.25), "n": np.int64(3)}, 1.5)
    assert rows == [{"task": "CTC", "metric": "label error rate", "value": 0.25, "seconds": 1.5},
                    {"task": "CTC", "metric": "n", "value": 3.0, "seconds": 1.5}]  # fmt: skip
    assert all(type(row["value"]) is float for row in rows)
    text = tasks_tour.report(config(), rows)
    assert text.startswith("# Task tour (200 Adam steps per task, seed 3)") and "| CTC | label error rate |" in text
    more = rows + tasks_tour.rows_of("parity", {"accuracy": 0.875}, 2.0)
    assert tasks_tour.headline(more) == ("CTC: label error rate 0.250, n 3.000", "parity: accuracy 0.875")


def test_fit_finds_the_minimum_of_a_quadratic():
    """Adam on (w - target)^2 with batches (target,) from the step: the tour's loop reaches the minimiser."""
    params = tasks_tour.fit(config(), {"w": jnp.zeros(3)}, lambda p, t: jnp.sum((p["w"] - t) ** 2),
                            lambda step: (jnp.array([1.0, -2.0, 0.5]),))  # fmt: skip
    np.testing.assert_allclose(params["w"], [1.0, -2.0, 0.5], atol=2e-2)

