"""The real-data applications behind ``experiments/*.py``: one module per experiment.

Each module holds what its script would otherwise carry inline and what a test or a notebook wants to call:
the model built from the config, its loss and evaluation, the comparison with the baseline, and the report.
``experiments/<name>.py`` keeps only the config (the command line) and the wiring of these calls. The package
sits on top of the library: it may import any of core, tasks, training, analysis and data, and nothing in
rnnjax imports it.
"""
