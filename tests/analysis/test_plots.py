"""Plots drawn with matplotlib's object API: the same pixels as pyplot's Agg, and no process-wide state touched."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnjax.analysis import plots, viz

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERIES = {"train": [1.0, 0.5, 0.3, 0.2], "eval": [1.2, 0.7, 0.4, 0.35]}
VALUES = {"lstm": 0.25, "gru": 0.125, "simple": 0.5}

# The pre-object-API implementation (pyplot after matplotlib.use("Agg")), run in its own process as the reference.
PYPLOT_REFERENCE = """
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
series, values, folder = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
figure, axes = plt.subplots(figsize=(8, 4))
for label, ys in series.items():
    axes.plot(range(len(ys)), ys, label=label, linewidth=1)
axes.set_xlabel("step"); axes.set_ylabel("loss"); axes.set_title("curves"); axes.legend(); axes.grid(alpha=0.3)
figure.tight_layout(); figure.savefig(folder + "/lines.png", dpi=110); plt.close(figure)
figure, axes = plt.subplots(figsize=(max(4, 1.2 * len(values)), 4))
drawn = axes.bar(list(values), list(values.values()), color="tab:blue")
axes.bar_label(drawn, fmt="%.3g"); axes.set_ylabel("error"); axes.set_title("bars")
axes.tick_params(axis="x", rotation=20)
figure.tight_layout(); figure.savefig(folder + "/bars.png", dpi=110); plt.close(figure)
"""


def _pixels(path):
    image = plots.import_matplotlib("matplotlib.image")
    return np.asarray(image.imread(path))


def _python(code: str, *arguments: str, **env_updates: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu", **env_updates}
    command = [sys.executable, "-c", code, *arguments]
    return subprocess.run(command, env=env, cwd=ROOT, timeout=120, capture_output=True, text=True)


def test_object_api_plots_match_pyplot_pixel_for_pixel(tmp_path):
    reference = tmp_path / "pyplot"
    reference.mkdir()
    done = _python(PYPLOT_REFERENCE, json.dumps(SERIES), json.dumps(VALUES), str(reference))
    assert done.returncode == 0, done.stderr
    ours_lines = plots.lines(SERIES, tmp_path / "ours" / "lines.png", xlabel="step", ylabel="loss", title="curves")
    ours_bars = plots.bars(VALUES, tmp_path / "ours" / "bars.png", ylabel="error", title="bars")
    for ours, name, size in [(ours_lines, "lines.png", (440, 880)), (ours_bars, "bars.png", (440, 440))]:
        expected = _pixels(reference / name)
        assert expected.shape[:2] == size  # figsize * dpi
        np.testing.assert_array_equal(_pixels(ours), expected)


def test_confusion_and_gradient_flow_render_their_data(tmp_path):
    matrix = np.array([[5, 1], [0, 7]])
    path = plots.confusion(matrix, tmp_path / "confusion.png", labels=["a", "b"], title="c")
    assert _pixels(path).shape[:2] == (550, 550)
    panels = {"norm": {"lstm": [1.0, 0.1, 0.01, 0.0]}, "jacobian": {"lstm": [1.0, 0.5, 0.25, 0.125]}}
    assert _pixels(viz.gradient_flow(panels, tmp_path / "flow.png")).ndim == 3


def test_new_figure_is_not_registered_with_pyplot():
    figure, axes = plots.new_axes(figsize=(2, 2))
    assert figure.axes == [axes]
    assert type(figure.canvas).__name__ == "FigureCanvasAgg"
    assert figure.canvas.manager is None  # pyplot gives each of its figures a manager (a window, in a GUI)


DRAW_EVERYTHING = """
import sys, matplotlib
before = matplotlib.get_backend()
import rnnjax, rnnjax.core
after_import = sorted(name for name in ("matplotlib.pyplot", "flax") if name in sys.modules)
from rnnjax.analysis import plots
plots.lines({"a": [1.0, 2.0]}, sys.argv[1] + "/a.png")
print(before, matplotlib.get_backend(), after_import, "matplotlib.pyplot" in sys.modules)
"""


def test_plotting_leaves_the_users_backend_alone(tmp_path):
    done = _python(DRAW_EVERYTHING, str(tmp_path), MPLBACKEND="svg")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "svg", "[]", "False"]


def test_missing_matplotlib_names_the_extra():
    with pytest.raises(ImportError, match=r"rnnjax\[plots\]"):
        plots.import_matplotlib("matplotlib.no_such_module")
