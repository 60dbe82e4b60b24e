"""Progress over the compiled groups of a sweep or of the main job.

A :class:`Progress` is told what each group will cost (an estimated amount of ``work``, see
:attr:`rnnjax.probes.planning.Group.work`) and how many models it trains. It shows the study, the model and width
being trained, models done / total, the elapsed time and an estimate of the time left: a tqdm bar when the
stream is a terminal, one plain line per finished group otherwise (CI logs), nothing when disabled.

    progress = Progress(total_work, total_models, groups=len(groups))   # or Progress.over(groups)
    progress.begin("causality gru w16")
    ...train...
    progress.finish(work=group.work, models=group.models)
    progress.close()
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm


def format_seconds(seconds: float) -> str:
    """``75.2`` -> ``'1m15s'``, ``3700`` -> ``'1h01m40s'``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Progress over groups; work units drive the time estimate, models are what is shown as done / total.

    Args:
      total_work: the summed work of every group still to run (any positive unit).
      total_models: the models those groups train.
      groups: the number of groups.
      enabled: False for a silent progress (``--quiet``).
      stream: where to write (default ``sys.stderr``); a tqdm bar when ``stream.isatty()``, plain lines otherwise.
    """

    def __init__(
        self, total_work: float, total_models: int, groups: int, *, enabled: bool = True, stream: TextIO | None = None
    ):  # fmt: skip
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.total_work, self.total_models, self.groups = float(total_work), int(total_models), int(groups)
        self.work_done, self.models_done, self.groups_done = 0.0, 0, 0
        self.label = ""
        self.start = time.perf_counter()
        terminal = enabled and _isatty(self.stream)
        self.bar = tqdm(
            total=max(self.total_work, 1e-9), file=self.stream, dynamic_ncols=True, leave=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]",
        ) if terminal else None  # fmt: skip
        self._postfix()

    @classmethod
    def over(cls, groups, *, enabled: bool = True, stream: TextIO | None = None) -> "Progress":
        """Progress over ``groups`` (each with ``work`` and ``models``: :class:`rnnjax.probes.planning.Group`)."""
        work, models = sum(g.work for g in groups), sum(g.models for g in groups)
        return cls(work, models, len(groups), enabled=enabled, stream=stream)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float | None:
        """elapsed * work left / work done; None before the first group ends."""
        if self.work_done <= 0:
            return None
        return self.elapsed() * max(self.total_work - self.work_done, 0.0) / self.work_done

    def begin(self, label: str) -> None:
        """A group starts: ``label`` names its study, model and width."""
        self.label = label
        if self.bar is not None:
            self.bar.set_description_str(label, refresh=False)
            self._postfix()

    def finish(self, work: float, models: int) -> None:
        """The current group ended after training ``models`` models worth ``work``."""
        self.work_done += work
        self.models_done += models
        self.groups_done += 1
        if self.bar is not None:
            self.bar.update(work)
            self._postfix()
        elif self.enabled:
            self._line()

    def note(self, text: str) -> None:
        """A line of text that does not break the bar (nothing when disabled)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        elif self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def _postfix(self) -> None:
        if self.bar is not None:
            text = f"models {self.models_done}/{self.total_models}, groups {self.groups_done}/{self.groups}"
            self.bar.set_postfix_str(text, refresh=True)

    def _line(self) -> None:
        left = self.remaining()
        estimate = "?" if left is None else f"~{format_seconds(left)}"
        self.stream.write(
            f"[models {self.models_done}/{self.total_models}, groups {self.groups_done}/{self.groups}] "
            f"{self.label} done; elapsed {format_seconds(self.elapsed())}, left {estimate}\n"
        )
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
