"""Probe your own sequence task: causal gap, look-ahead, width and bottleneck, against data-driven linear floors.

    python experiments/probe_task.py --data my_task.npz          # ~5 min for 1,000 sequences of T=32 on 2 cores
    python experiments/probe_task.py --demo entities             # how much look-ahead does a tagger need?
    python experiments/probe_task.py --demo dates                # how small can the vector be? what does attention buy?
    python experiments/probe_task.py --quick                     # smoke version (the entity demo, tiny sizes)
    python experiments/probe_task.py --data my_task.npz --report_only     # rebuild the report from the records
    python experiments/probe_task.py --data my_task.npz --probe.widths 4 8 16 --probe.max_delay 4 --probe.seeds 0 1 2

The .npz holds ``inputs`` [n, T, d_in] and ``outputs`` [n, T, d_out] (aligned) or [n, M, d_out] (other lengths),
optionally ``input_lengths``, ``output_lengths``, ``classes`` (then ``outputs`` are int labels [n, M]) and
``split`` (0 train, 1 validation, 2 test per sequence). Writes runs/probe_task/<name>/{config.json,
records.jsonl, results.json, report.md, plots/}; a rerun with the same name resumes. See "Probing your own task"
in docs/universal_approximation.md.
"""

from __future__ import annotations

import sys

from rnnjax.apps import probe_task as app
from rnnjax.training.config import cli


def main(argv: list[str] | None = None):
    config = cli(app.ProbeTaskConfig, argv, presets=app.PRESETS)
    return app.run(config)


if __name__ == "__main__":
    print(main(sys.argv[1:]).ending())
