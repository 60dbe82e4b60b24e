"""The Python blocks of the README and of the docs' Markdown pages: every block parses, every rnnjax import line in
the guides imports, and every self-contained block (one that uses no name it does not define or import itself, as
the README's 10-line example) runs; a block copied into two pages runs once. Blocks that sketch an API with names
from the surrounding text (`key`, `xs`, `loss_fn`, ...) are only parsed and have their imports checked.
"""

import ast
import builtins
import os
import pathlib
import re
import subprocess
import sys

import pytest
from test_readme_imports import _imports
from test_readme_imports import test_each_documented_import_works as check_import

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "api" not in p.parts)]


def _blocks(path: pathlib.Path) -> list[tuple[str, int, str]]:
    """(document, first line, code) for every ```python block."""
    text = path.read_text()
    return [(str(path.relative_to(ROOT)), text[: m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"```python\n(.*?)```", text, re.S)]


def free_names(code: str) -> set[str]:
    """Names a block reads without defining, importing or getting them from builtins."""
    tree = ast.parse(code)
    defined, loaded = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, ast.alias):
            defined.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return loaded - defined


BLOCKS = [block for path in DOCUMENTS for block in _blocks(path)]
RUNNABLE = list({code: (document, line, code) for document, line, code in BLOCKS if not free_names(code)}.values())
GUIDE_IMPORTS = [item for path in DOCUMENTS[1:] if path.parent != ROOT / "docs" for item in _imports(path)]


def test_the_checks_find_blocks_to_run():
    assert len(BLOCKS) >= 15 and len(RUNNABLE) >= 1
    assert free_names("ys = f(xs)") == {"f", "xs"}
    assert free_names("import jax\nfrom a import b as c\nk = jax.random.key(0)\nc(k, lambda z: z)") == set()


@pytest.mark.parametrize("document, line, code", BLOCKS, ids=[f"{d}:{n}" for d, n, _ in BLOCKS])
def test_each_block_parses(document, line, code):
    ast.parse(code)


@pytest.mark.parametrize("document, line, code", RUNNABLE, ids=[f"{d}:{n}" for d, n, _ in RUNNABLE])
def test_each_self_contained_block_runs(document, line, code):
    """In a fresh interpreter, as a reader would run it (not under this suite's float64 and shape checks)."""
    env = {key: value for key, value in os.environ.items() if key not in ("RNNJAX_CHECK_SHAPES", "JAX_ENABLE_X64")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"{document}:{line}\n{result.stderr[-4000:]}"


@pytest.mark.parametrize("document, line, statement", GUIDE_IMPORTS, ids=[f"{d}:{n}" for d, n, _ in GUIDE_IMPORTS])
def test_each_import_in_the_guides_works(document, line, statement):
    check_import(document, line, statement)
