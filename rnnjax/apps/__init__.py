"""The real-data applications behind ``experiments/*.py``: one module per experiment.

Each module holds the experiment's typed config (a frozen dataclass with a help line per field, and its
``PRESETS``), the model built from it, its loss, training and evaluation, the comparison with the baseline, the
report, and ``run(config)``, which does all of it and returns an :class:`~rnnjax.apps.outcome.Outcome`.
``experiments/<name>.py`` is ``app.run(cli(Config, presets=PRESETS))`` and prints the outcome's ending (the main
job, :mod:`rnnjax.apps.universal_approximation`, keeps its config and wiring in its script).
Shared by the apps: :mod:`rnnjax.apps.outcome` (how every run ends), :mod:`rnnjax.apps.seeds` (per-seed results
and their summary) and :mod:`rnnjax.apps.comparison` (seeds against a baseline). The package sits on top of the
library: it may import any of core, tasks, training, analysis and data, and nothing in rnnjax imports it.
"""
