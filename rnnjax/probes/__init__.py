"""The universal-approximation probe: target zoo, models, sweeps, theory and the report.

    from rnnjax.probes import targets, theory
    from rnnjax.probes.models import ModelSpec, Readout
    from rnnjax.probes.sweep import TrainConfig, sweep

See docs/universal_approximation.md. ``rnnjax.probes.report`` (matplotlib) and ``rnnjax.probes.studies``
are imported on demand.
"""

from rnnjax.probes import models, sweep, targets, theory

__all__ = ["models", "sweep", "targets", "theory"]
