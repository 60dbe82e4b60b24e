"""The documentation site builds with `mkdocs build --strict` (no broken link, no unresolved reference, no page left
out of the nav), every course notebook executes as the site's build executes it and shows its figures, and the API
reference covers every public module (docs/gen_api.py).

The notebooks of docs/course run one per test, with RNNJAX_COURSE_QUICK=1, through the kernel machinery the
site's build uses (jupytext reads them, nbclient executes them): about 30 s each on an idle 2-core machine, so the
workers share them; the strict build itself then runs with execution off.
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
NOTEBOOKS = sorted((ROOT / "docs" / "course").glob("[0-9][0-9]_*.py"))


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(config: pathlib.Path, site: pathlib.Path, execute: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "RNNJAX_COURSE_QUICK": "1", "RNNJAX_DOCS_EXECUTE": str(execute).lower(),
           "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    env.pop("RNNJAX_CHECK_SHAPES", None)  # the notebooks run as a reader's would
    return subprocess.run([*MKDOCS, "-f", str(config), "-d", str(site)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)


def test_api_pages_are_generated_from_the_current_modules():
    pages = _gen_api().pages()
    on_disk = {path.name: path.read_text() for path in (ROOT / "docs" / "api").glob("*.md")}
    assert on_disk == pages, "docs/api is stale: run `python docs/gen_api.py`"


def test_the_api_reference_names_every_public_module():
    documented = set(re.findall(r"^::: (rnnjax[\w.]*)$", "\n".join(_gen_api().pages().values()), re.M))
    for path in (ROOT / "rnnjax").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1 and not any(part.startswith("_") for part in parts):
            assert ".".join(parts) in documented, path


def test_strict_build_fails_on_a_broken_link(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: {docs}\ntheme:\n  name: material\n  font: false\n")
    result = _build(config, tmp_path / "site", execute=False)
    assert result.returncode != 0 and "missing.md" in result.stderr


def test_every_course_notebook_is_in_the_site_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert len(NOTEBOOKS) >= 3
    for notebook in NOTEBOOKS:
        assert f"course/{notebook.name}" in nav, notebook.name


def test_the_site_builds_strict_with_every_page(tmp_path):
    site = tmp_path / "site"
    result = _build(ROOT / "mkdocs.yml", site, execute=False)
    assert result.returncode == 0, result.stderr[-6000:]
    for notebook in NOTEBOOKS:
        page = (site / "course" / notebook.stem / "index.html").read_text()
        assert "Traceback" not in page and "QUICK" in page, notebook.name  # the notebook's code, rendered
    for package in _gen_api().PACKAGES:
        assert (site / "api" / package / "index.html").exists(), package


def _execute(path: pathlib.Path, monkeypatch) -> "nbformat.NotebookNode":  # noqa: F821
    import jupytext
    from nbclient import NotebookClient

    for name, value in {"RNNJAX_COURSE_QUICK": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                        "PYTHONPATH": str(ROOT)}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for name in ("RNNJAX_CHECK_SHAPES", "JAX_ENABLE_X64"):
        monkeypatch.delenv(name, raising=False)  # the notebooks run as a reader's would
    notebook = jupytext.read(path)
    NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_each_course_notebook_runs_and_shows_figures(notebook, monkeypatch):
    executed = _execute(notebook, monkeypatch)  # a cell's error raises CellExecutionError, naming the cell
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), f"{notebook.name} shows no figure"
