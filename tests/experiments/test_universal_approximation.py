"""The quick universal-approximation report builds and its results.json follows the documented schema."""

import importlib.util
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _experiment():
    path = ROOT / "experiments" / "universal_approximation.py"
    spec = importlib.util.spec_from_file_location("universal_approximation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_report_builds(tmp_path):
    run = _experiment().main(["--quick", "--root", str(tmp_path), "--name", "ci"])
    results = json.loads((run.directory / "results.json").read_text())
    schema = results["schema"]
    assert schema[:11] == [
        "study", "target", "model", "width", "depth", "delay", "seed",
        "nmse_train", "nmse_test", "nmse_test_2x", "nmse_test_long",
    ]  # fmt: skip
    assert {r["study"] for r in results["records"]} == {"causality", "width", "memory", "wiener", "non_fading", "depth"}
    for record in results["records"]:
        assert set(schema) <= set(record)
        assert isinstance(record["width"], int) and isinstance(record["nmse_test"], float)
        assert record["theory_nmse"] is None or record["theory_nmse"] >= 0.0
    # theory sits next to training: the causal linear RNN cannot beat the exact floor at D = 0
    floor = [r for r in results["records"] if r["study"] == "causality" and r["delay"] == 0 and r["model"] == "linear"]
    assert floor and all(r["nmse_test"] >= 0.9 * r["theory_nmse"] > 0.1 for r in floor)
    report = (run.directory / "report.md").read_text()
    for title in ("Causal vs non-causal", "Width thresholds", "curse of memory", "Wiener", "parity", "Depth vs width"):
        assert title in report
    plots = sorted(p.name for p in (run.directory / "plots").glob("*.png"))
    assert "causality.png" in plots and "width.png" in plots and len(plots) >= 6
    for name in plots:
        assert f"plots/{name}" in report
