"""Planning a sweep: the :class:`Group` (one compiled program: every (target, seed, delay) of one model spec at
one width) and :func:`plan_groups`, the groups of a sweep in order."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Sequence

from rnnjax.probes.models import ModelSpec
from rnnjax.probes.targets import Target, check_family
from rnnjax.probes.training import DEFAULT_CONFIG, TrainConfig

COMPILE_WORK = 2e7
"""A group's compile time in work units: on CPU compiling dominates a default-run group (5-11 s against 1-10 s of
running); with 2e6 the first group's estimate of the default main job was 10 min 47 s for a 3 min 54 s run, with
2e7 it is ~5 min 10 s (2-core VM)."""


@dataclasses.dataclass(frozen=True)
class Group:
    """One compiled program: every (target, seed, delay) of one model spec at one width.

    Attributes:
      study: label stored in every record (and the first part of :attr:`id`).
      targets: maps with the same sizes, input kind and labelling.
      spec: the model family at its width.
      seeds, delays: one run per (target, seed, delay).
      config: training and evaluation settings.
      evaluate: optional ``evaluate(group, triples, params) -> dict`` of JSON-ready extras computed from the trained
        parameters (e.g. step responses), kept next to the group's records.
    """

    study: str
    targets: tuple[Target, ...]
    spec: ModelSpec
    seeds: tuple[int, ...]
    delays: tuple[int, ...]
    config: TrainConfig
    evaluate: Callable[..., dict[str, Any]] | None = dataclasses.field(default=None, compare=False)

    @property
    def id(self) -> str:
        """Stable name 'study/target[+target...]/model/w<width>', the key of records.jsonl."""
        names = "+".join(target.name for target in self.targets)
        return f"{self.study or '-'}/{names}/{self.spec.name}/w{self.spec.width}"

    @property
    def label(self) -> str:
        return f"{self.study or 'sweep'} {self.spec.name} w{self.spec.width}"

    @property
    def models(self) -> int:
        return len(self.targets) * len(self.seeds) * len(self.delays)

    @property
    def triples(self) -> list[tuple[int, int, int]]:
        """(target index, seed, delay) of every run, in the order of the program's run axis."""
        return list(itertools.product(range(len(self.targets)), self.seeds, self.delays))

    @property
    def work(self) -> float:
        """Cost estimate: models x restarts x layers x length x (Adam examples + L-BFGS examples), plus a compile
        share."""
        config, spec = self.config, self.spec
        examples = config.steps * min(config.batch_size, config.train_size) + 4 * config.lbfgs_steps * config.train_size
        examples *= config.restarts
        layers = spec.depth * (2 if spec.bidirectional else 1)
        return COMPILE_WORK + self.models * layers * config.length * examples


def plan_groups(
    target: Target | Sequence[Target],
    model_specs: Sequence[ModelSpec],
    widths: Sequence[int] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3),
    delays: Sequence[int] | None = None,
    config: TrainConfig = DEFAULT_CONFIG,
    study: str = "",
    evaluate: Callable[..., dict[str, Any]] | None = None,
) -> list[Group]:
    """The groups of :func:`rnnjax.probes.sweep.sweep` (same arguments), one per (model spec, width), in order."""
    targets = (target,) if isinstance(target, Target) else tuple(target)
    check_family(targets)
    groups = []
    for spec in model_specs:
        for width in widths or (spec.width,):
            sized = dataclasses.replace(spec, width=width)
            chosen = tuple(delays or (spec.delay,))
            groups.append(Group(study, targets, sized, tuple(seeds), chosen, config, evaluate))
    return groups
