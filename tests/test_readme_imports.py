"""Every import line in the README's Python blocks (and docs/*.md) imports: a renamed module fails here, not for a
reader copying the README."""

import ast
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _imports(path: pathlib.Path) -> list[tuple[str, int, str]]:
    """(document, line, statement) for every 'import'/'from ... import' line of rnnjax in its python blocks."""
    found = []
    for block in re.finditer(r"```python\n(.*?)```", path.read_text(), re.S):
        start = path.read_text()[: block.start()].count("\n") + 2
        for offset, line in enumerate(block.group(1).splitlines()):
            statement = line.split("#")[0].strip()
            if re.match(r"(from rnnjax[\w.]* import |import rnnjax)", statement):
                found.append((path.name, start + offset, statement))
    return found


IMPORTS = [item for path in DOCUMENTS for item in _imports(path)]


def test_the_readme_has_import_lines_to_check():
    assert sum(document == "README.md" for document, _, _ in IMPORTS) >= 5


@pytest.mark.parametrize("document, line, statement", IMPORTS, ids=[f"{d}:{n}" for d, n, _ in IMPORTS])
def test_each_documented_import_works(document, line, statement):
    node = ast.parse(statement).body[0]
    if isinstance(node, ast.Import):
        for alias in node.names:
            importlib.import_module(alias.name)
        return
    module = importlib.import_module(node.module)
    for alias in node.names:
        if not hasattr(module, alias.name):  # a submodule imported by name
            importlib.import_module(f"{node.module}.{alias.name}")
