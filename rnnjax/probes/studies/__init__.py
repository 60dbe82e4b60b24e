"""The seven studies of the universal-approximation report, each a module with a ``plan(config) -> StudyPlan``.

A :class:`~rnnjax.probes.studies.base.StudyPlan` holds the study's independent groups (one compiled program each,
named by a stable id, see :class:`rnnjax.probes.planning.Group`) and the functions that own its words: ``finish``
(theory columns and extras), ``findings`` (its paragraph), ``answer`` (its sentences of the short answer),
``plots`` (its figures) and ``contains`` (which of its model classes hold which). :mod:`rnnjax.probes.runner`
runs, records and resumes the groups and finishes each study once (:func:`rnnjax.probes.runner.collect`);
:mod:`rnnjax.probes.report` assembles the report.
"""

from __future__ import annotations

from rnnjax.probes.studies import causality, depth, encoder_decoder, memory, non_fading, width, wiener
from rnnjax.probes.studies.base import LINEAR, ProbeConfig, StudyPlan

__all__ = ["LINEAR", "ProbeConfig", "StudyPlan", "STUDIES", "plan"]

STUDIES = {
    causality.NAME: causality.plan,
    width.NAME: width.plan,
    memory.NAME: memory.plan,
    wiener.NAME: wiener.plan,
    non_fading.NAME: non_fading.plan,
    depth.NAME: depth.plan,
    encoder_decoder.NAME: encoder_decoder.plan,
}
"""Study name -> ``plan(config) -> StudyPlan``, in report order."""


def plan(config: ProbeConfig, only: tuple[str, ...] = ()) -> dict[str, StudyPlan]:
    """The plans of the studies (all, or those named in ``only``), in report order."""
    unknown = set(only) - set(STUDIES)
    if unknown:
        raise ValueError(f"only must name studies among {sorted(STUDIES)}; got {sorted(unknown)}")
    return {name: study(config) for name, study in STUDIES.items() if not only or name in only}
