"""Is universal approximation possible for many-to-many tasks? Six studies, one report.

    python experiments/universal_approximation.py            # a few minutes on 2 CPU cores
    python experiments/universal_approximation.py --full     # the long version
    python experiments/universal_approximation.py --quick    # CI smoke version

Writes runs/universal_approximation/<name>/{config.json, results.json, report.md, plots/*.png}.
See docs/universal_approximation.md for the question, the literature and how to read the plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)  # study 2 trains in float64; the others pass float32 explicitly

from rnnjax.probes import report, studies  # noqa: E402
from rnnjax.probes.sweep import RESULT_FIELDS  # noqa: E402
from rnnjax.training.runs import Run  # noqa: E402

SECTIONS = {
    "causality": ("1. Causal vs non-causal many-to-many", ["causality"]),
    "width": ("2. Width thresholds (exact representability)", ["width"]),
    "memory": ("3. Memory decay: the curse of memory", ["memory", "memory_steps"]),
    "wiener": ("4. Nonlinear fading memory: a Wiener system", ["wiener"]),
    "non_fading": ("5. Non-fading memory: parity and counting", ["non_fading_lengths"]),
    "depth": ("6. Depth vs width for deep narrow ReLU RNNs", ["depth", "depth_lengths"]),
}

ANSWER = """\
**Short answer.** Yes for causal maps with fading memory, and no for the rest, for a reason that width
cannot fix. RNNs approximate the whole output sequence of a causal fading-memory map: the error falls towards
0 as the width grows, and a linear RNN whose width reaches a linear target's state-space order fits it
exactly (NMSE ~1e-30 in float64). For a non-causal target no unidirectional RNN, of any width or cell, gets
below an error floor. We compute that floor in closed form and training reaches it. It is an information
limit, not an expressivity one: it goes away with a bidirectional model, with an output delay D that covers
the target's look-ahead, or in the many-to-one setting (label at the end). Inside the causal class, the width
a target needs depends on how its memory decays (delayed or slowly decaying memory costs width). A linear
readout stays at the best linear filter's error on a nonlinear fading-memory map whatever the width, while an
MLP readout on a linear RNN (Boyd and Chua's structure) or a nonlinear cell does not. Maps without fading
memory sit outside the theorems: at the training length they are learned, but whether the solution holds on
longer sequences depends on the map (see study 5). The numbers below come from this run. The theory
columns give the optimum that no training can beat: an exact value, or a band [lower, upper] where the exact
optimum has no closed form. A trained value above the theory shows an optimisation failure; theory above
zero shows an expressivity or information limit.
"""


def parse(argv: list[str] | None) -> tuple[studies.ProbeConfig, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="CI smoke version (well under a minute)")
    size.add_argument("--full", action="store_true", help="the long version")
    parser.add_argument("--name", default=None, help="run name (default: quick/default/full)")
    parser.add_argument("--root", default="runs", help="runs root folder")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(studies.STUDIES)}")
    args = parser.parse_args(argv)
    config = studies.ProbeConfig()
    if args.quick or args.full:
        config = studies.ProbeConfig.quick() if args.quick else studies.ProbeConfig.full()
    args.name = args.name or ("quick" if args.quick else "full" if args.full else "default")
    return config, args


def _sentence(docstring: str) -> str:
    text = docstring.split(":", 1)[1].strip()
    return text[0].upper() + text[1:]


def markdown(records, extras, files, seconds, config, args) -> str:
    notes = report.findings(records)
    lines = ["# Universal approximation for many-to-many tasks: an empirical probe", "", ANSWER]
    lines += [f"Run `{args.name}` ({'--quick' if args.quick else '--full' if args.full else 'default'}): "
              f"{len(records)} trained models in {seconds:.0f} s on {platform.machine()} "
              f"({jax.device_count()} {jax.default_backend()} device(s)); training length T={config.length}, "
              f"seeds {list(config.seeds)}.", ""]  # fmt: skip
    for study, (title, plots) in SECTIONS.items():
        if not any(r["study"] == study for r in records):
            continue
        lines += [f"## {title}", "", _sentence(studies.STUDIES[study].__doc__), ""]
        if study in notes:
            lines += [f"**Measured:** {notes[study]}", ""]
        if study == "width":
            lines += [f"State-space orders (Hankel rank) of the targets: {extras['width']['orders']}.", ""]
        lines += [report.study_table(records, study), ""]
        lines += [f"![{name}](plots/{files[name]})" for name in plots if name in files] + [""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Run:
    config, args = parse(argv)
    only = tuple(s for s in args.only.split(",") if s)
    start = time.perf_counter()
    records, extras = studies.run_all(config, only)
    seconds = time.perf_counter() - start
    run = Run("universal_approximation", name=args.name, root=args.root, config=dataclasses.asdict(config))
    files = report.make_plots(records, extras, run.plot_path)
    slim = [{k: v for k, v in r.items() if k != "losses"} for r in records]
    run.write_results({
        "schema": list(RESULT_FIELDS), "records": slim, "summary": report.summarise(records),
        "seconds": seconds, "extras": {k: v for k, v in extras.items() if k != "memory"},
    })  # fmt: skip
    run.write_report(markdown(records, extras, files, seconds, config, args))
    print(f"wrote {run.directory} ({len(records)} models, {seconds:.1f} s)")
    return run


if __name__ == "__main__":
    main(sys.argv[1:])
