"""The universal-approximation probe: target zoo, models, sweeps, theory and the report.

    from rnnjax.probes import targets, theory
    from rnnjax.probes.models import ModelSpec, Readout
    from rnnjax.probes.sweep import sweep
    from rnnjax.probes.training import TrainConfig

See docs/universal_approximation.md. ``rnnjax.probes.report`` (matplotlib) and ``rnnjax.probes.studies``
are imported on demand, as is ``rnnjax.probes.task`` (probe your own data set: ``task.probe(task.task_data(...))``).
"""

from rnnjax.probes import models, sweep, targets, theory, training

__all__ = ["models", "sweep", "targets", "theory", "training"]
