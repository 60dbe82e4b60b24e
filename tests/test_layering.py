"""The layers of rnnjax, read from the source with ``ast`` (every import, including those inside functions).

* ``rnnjax.core`` imports nothing from tasks, training, analysis, probes, interop or data;
* ``rnnjax.tasks`` imports nothing from training, analysis, probes or interop;
* nothing in rnnjax imports ``rnnjax.apps`` (the experiments' applications sit on top);
* no import cycle among rnnjax modules (a package's ``__init__`` counts: ``from a.b import c`` runs ``a.b``);
* no module imports a private (``_name``) object from another rnnjax module, except from ``rnnjax.checks.arguments``;
* every ``config`` argument in ``rnnjax.apps`` has its config type (never ``Any``, never unannotated).
"""

from __future__ import annotations

import ast
import pathlib
from typing import Iterator, NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_PRIVATE = {"rnnjax.checks.arguments"}  # the one module whose names every module may use


class Import(NamedTuple):
    """One imported object: ``module`` (an rnnjax module) and, for ``from module import name``, ``name``."""

    module: str
    name: str | None
    line: int


class Graph(NamedTuple):
    """Every module under a package root, its imports, the module -> imported module edges, and the
    private attributes it reads off imported modules (``unroll._helper`` as ``Import("...unroll", "_helper")``)."""

    modules: set[str]
    imports: dict[str, list[Import]]
    edges: dict[str, set[str]]
    attributes: dict[str, list[Import]]


def module_names(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    """``{"rnnjax.core.unroll": path, "rnnjax.core": path/__init__.py, ...}`` for every .py file under the package."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(tree: ast.AST, module: str, is_package: bool, package: str) -> Iterator[Import]:
    """Every import of a ``package`` module anywhere in ``tree`` (module level, functions, branches)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    yield Import(alias.name, None, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, module, is_package)
            if source == package or source.startswith(package + "."):
                for alias in node.names:
                    yield Import(source, alias.name, node.lineno)


def module_aliases(items: list[Import], tree: ast.AST, modules: set[str]) -> dict[str, str]:
    """Local names bound to package modules: ``import a.b as m``, ``from a import b`` (b a module)."""
    aliases = {}
    for node in ast.walk(tree):
        for alias in getattr(node, "names", ()) if isinstance(node, (ast.Import, ast.ImportFrom)) else ():
            bound = alias.asname or alias.name.split(".")[0]
            for item in items:
                if item.line != node.lineno:
                    continue
                if item.name is None and alias.asname and item.module == alias.name:
                    aliases[bound] = item.module
                elif item.name == alias.name and f"{item.module}.{item.name}" in modules:
                    aliases[bound] = f"{item.module}.{item.name}"
    return aliases


def private_attributes(tree: ast.AST, aliases: dict[str, str]) -> Iterator[Import]:
    """``alias._name`` reads, where ``alias`` is bound to a package module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                yield Import(aliases[node.value.id], node.attr, node.lineno)


def targets(item: Import, modules: set[str]) -> set[str]:
    """The modules an import runs: the module, each parent package, and ``module.name`` when that is a module."""
    parts = item.module.split(".")
    found = {".".join(parts[:end]) for end in range(1, len(parts) + 1)}
    if item.name is not None and f"{item.module}.{item.name}" in modules:
        found.add(f"{item.module}.{item.name}")
    return found & modules


def build_graph(root: pathlib.Path, package: str) -> Graph:
    """Parse every module of ``package`` under ``root`` and collect its imports of ``package`` modules."""
    paths = module_names(root, package)
    modules = set(paths)
    imports, edges, attributes = {}, {}, {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        imports[module] = list(imports_of(tree, module, path.name == "__init__.py", package))
        attributes[module] = list(private_attributes(tree, module_aliases(imports[module], tree, modules)))
        ancestors = {".".join(module.split(".")[:end]) for end in range(1, module.count(".") + 1)}
        # a module always starts after its own parent packages, so those edges close no cycle
        edges[module] = {t for item in imports[module] for t in targets(item, modules)} - ancestors - {module}
    return Graph(modules, imports, edges, attributes)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(edges.get(node, ())):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def layer_violations(graph: Graph, layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module:line -> imported`` for every import from ``layer`` into one of the ``forbidden`` packages."""
    found = []
    for module, items in sorted(graph.imports.items()):
        if module != layer and not module.startswith(layer + "."):
            continue
        for item in items:
            for target in sorted(targets(item, graph.modules) | {item.module}):
                if any(target == above or target.startswith(above + ".") for above in forbidden):
                    found.append(f"{module}:{item.line} -> {target}")
    return sorted(set(found))


def private_imports(graph: Graph, shared: set[str] = SHARED_PRIVATE) -> list[str]:
    """``module:line -> source._name`` for every private object imported from another module."""
    found = []
    for module, items in sorted(graph.imports.items()):
        for item in items + graph.attributes[module]:
            if item.name is None or not item.name.startswith("_") or item.name.startswith("__"):
                continue
            if f"{item.module}.{item.name}" in graph.modules:
                source, name = f"{item.module}.{item.name}", None  # a module, e.g. ``from rnnjax import _checks``
            else:
                source, name = item.module, item.name
            if name is not None and source != module and source not in shared:
                found.append(f"{module}:{item.line} -> {source}.{name}")
    return sorted(found)


GRAPH = build_graph(ROOT, "rnnjax")
ABOVE_CORE = ("rnnjax.tasks", "rnnjax.training", "rnnjax.analysis", "rnnjax.probes", "rnnjax.interop", "rnnjax.data")
ABOVE_TASKS = ("rnnjax.training", "rnnjax.analysis", "rnnjax.probes", "rnnjax.interop")


def test_core_imports_nothing_above_it():
    assert layer_violations(GRAPH, "rnnjax.core", ABOVE_CORE) == []


def test_tasks_import_nothing_above_them():
    assert layer_violations(GRAPH, "rnnjax.tasks", ABOVE_TASKS) == []


def test_nothing_imports_the_applications():
    below = sorted({module.split(".")[1] for module in GRAPH.modules if module.count(".") >= 1} - {"apps"})
    for layer in below:
        assert layer_violations(GRAPH, f"rnnjax.{layer}", ("rnnjax.apps",)) == [], layer
    assert "rnnjax.apps" not in {t for item in GRAPH.imports["rnnjax"] for t in targets(item, GRAPH.modules)}


def test_no_import_cycles():
    assert cycles(GRAPH.edges) == []


def test_no_private_names_cross_modules():
    assert private_imports(GRAPH) == []


def test_the_graph_holds_every_module_and_function_level_import():
    assert {"rnnjax", "rnnjax.core", "rnnjax.core.unroll", "rnnjax.checks.arguments", "rnnjax.typing"} <= GRAPH.modules
    assert "rnnjax.core.unroll" in GRAPH.edges["rnnjax"]  # rnnjax/__init__.py re-exports rnn from it


def test_checks_find_cycles_layer_breaks_and_private_imports(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/_checks.py": "def _shared(): ...\n",
        "pkg/data.py": "_hidden = 1\n",
        "pkg/core/__init__.py": "from pkg.core.a import f\n",
        "pkg/core/a.py": "from pkg._checks import _shared\ndef f():\n    from pkg.tasks.c import g\n",
        "pkg/tasks/__init__.py": "",
        "pkg/tasks/b.py": "from . import c\nfrom pkg.data import _hidden\n",
        "pkg/tasks/c.py": "import pkg.tasks.b\nimport pkg.data as data\ndef g():\n    return data._hidden\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = build_graph(tmp_path, "pkg")
    # a function-level import breaks the layer; the package and the module it names both count
    expected = ["pkg.core.a:3 -> pkg.tasks", "pkg.core.a:3 -> pkg.tasks.c"]
    assert layer_violations(graph, "pkg.core", ("pkg.tasks",)) == expected
    assert cycles(graph.edges) == [["pkg.tasks.b", "pkg.tasks.c"]]  # relative and plain imports
    expected = ["pkg.tasks.b:2 -> pkg.data._hidden", "pkg.tasks.c:4 -> pkg.data._hidden"]  # imported, or read off
    assert private_imports(graph, shared={"pkg._checks"}) == expected
    expected = ["pkg.core.a:1 -> pkg._checks._shared", *expected]
    assert private_imports(graph, shared=set()) == expected
    graph.edges["pkg.core.a"].add("pkg.core")  # back through a package __init__
    assert cycles(graph.edges) == [["pkg.core", "pkg.core.a"], ["pkg.tasks.b", "pkg.tasks.c"]]


def untyped_configs(root: pathlib.Path, folder: str) -> list[str]:
    """``module:line function`` for every ``config`` argument under ``root/folder`` unannotated or annotated ``Any``."""
    found = []
    for module, path in module_names(root, folder).items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            for argument in arguments:
                annotation = argument.annotation
                untyped = annotation is None or ast.unparse(annotation) in {"Any", "typing.Any", "'Any'"}
                if argument.arg == "config" and untyped:
                    found.append(f"{module}:{node.lineno} {getattr(node, 'name', 'lambda')}")
    return sorted(found)


def test_applications_take_typed_configs():
    assert untyped_configs(ROOT, "rnnjax/apps") == []


def test_untyped_configs_are_found(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text(
        "from typing import Any\n"
        "def typed(config: 'Config'): ...\n"
        "def loose(config: Any, run: Any): ...\n"
        "def bare(x, *, config): ...\n"
        "other = lambda config: config\n"
        "def named(settings: Any): ...\n"
    )
    assert untyped_configs(tmp_path, "pkg") == ["pkg.a:3 loose", "pkg.a:4 bare", "pkg.a:5 lambda"]


def string_literals(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in a module, f-string parts included (docstrings too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)]  # fmt: skip


def named_literals(path: pathlib.Path, names: set[str], fragments: set[str] = frozenset()) -> list[str]:
    """``path:line 'text'`` for every string literal that contains one of ``names`` or ``fragments`` as a
    substring, or equals a name."""
    found = []
    for line, text in string_literals(path):
        if text in names or any(name in text for name in names | set(fragments) if len(name) >= 5 or "-" in name):
            found.append(f"{path.name}:{line} {text!r}")
    return found


def probe_names() -> tuple[set[str], set[str]]:
    """(target names, model names) of every study of the default and the full probe, and of the target zoos."""
    from rnnjax.probes import studies, targets

    plans = [*studies.plan(studies.ProbeConfig()).values(), *studies.plan(studies.ProbeConfig.full()).values()]
    groups = [group for plan in plans for group in plan.groups]
    target_names = {t.name for g in groups for t in g.targets} | set(targets.zoo()) | set(targets.encoder_decoder_zoo())
    return target_names, {group.spec.name for group in groups}


MODEL_SUFFIXES = {"-encdec", "-attn", "-bi", "@last"}  # model and target name parts the report must not parse


def test_report_code_names_no_target_and_no_model():
    """The report assembles and formats; the studies own their targets' and models' names (issue 25)."""
    target_names, model_names = probe_names()
    report_code = [ROOT / "rnnjax" / "probes" / "report.py", ROOT / "rnnjax" / "apps" / "universal_approximation.py"]
    for path in report_code:
        assert named_literals(path, target_names, MODEL_SUFFIXES) == [], path
        assert [text for _, text in string_literals(path) if text in model_names] == [], path


def test_named_literals_are_found(tmp_path):
    path = tmp_path / "report.py"
    path.write_text('"""Docs."""\nx = "reversal"\ny = f"{x} on centred_sum4 rows"\nz = m.endswith("-attn")\n')
    assert named_literals(path, {"reversal", "centred_sum4"}, {"-attn"}) == [
        "report.py:2 'reversal'", "report.py:3 ' on centred_sum4 rows'", "report.py:4 '-attn'"]
    assert named_literals(path, {"gru"}) == []  # short names count only as whole literals
