"""Progress bars on the terminal: a run's (done, failed, running, rate and ETA) and a grid's (area tiled)."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ogc_upscaler.durations import duration

if TYPE_CHECKING:
    from rich.console import Console

    from ogc_upscaler.grid import TileSet
    from ogc_upscaler.manager import Progress as RunProgress


class SmoothedEta:
    """Time left from the rate of recent completions: jobs done over the last ``window`` seconds, so a burst
    of collections or a quiet minute moves it gradually, and planning more jobs changes only what is left.

    rich's own estimate reads the speed of the bar's last few updates, which come at every manager pass
    whether or not a job finished: at a steady rate it jumped between 0:35 and 6:44.
    """

    def __init__(self, window: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, done: int) -> None:
        """Note how many jobs are done now."""
        now = self._clock()
        if not self._samples or done != self._samples[-1][1]:
            self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] > self._window:
            self._samples.popleft()

    def seconds_left(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more jobs are done at the recent rate; None before two completions."""
        if len(self._samples) < 2:
            return None
        (first, done_first), (_, done_last) = self._samples[0], self._samples[-1]
        elapsed = min(self._clock() - first, self._window)  # the first sample is the count as the window opened
        rate = (done_last - done_first) / elapsed if elapsed > 0 else 0.0
        return remaining / rate if rate > 0 else None


class ProgressBar:
    """A rich progress bar fed by the manager's progress callback, showing the phase (planning,
    re-attaching, running), the counts per state and a smoothed ETA; silent where stderr is not a terminal."""

    def __init__(self, name: str, console: Console | None = None, eta: SmoothedEta | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = console or Console(file=sys.stderr)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            disable=not console.is_terminal,
            refresh_per_second=4,
        )
        self._name = name
        self._task = self._bar.add_task(name, total=None, detail="", eta="")
        self._start = time.monotonic()
        self._eta = eta or SmoothedEta()

    def __enter__(self) -> ProgressBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def update(self, progress: RunProgress) -> None:
        """Show the manager's counts (or, while planning, the jobs planned so far)."""
        c = progress.counts
        description = f"{self._name} · {progress.phase}"
        if progress.phase == "planning":  # Phase.PLANNING, without importing the manager into `grid`
            detail = f"planned {c['planned']:,}"
            self._bar.update(self._task, description=description, total=None, completed=0, detail=detail, eta="")
            return
        self._eta.observe(progress.done)
        minutes = max(1e-9, (time.monotonic() - self._start) / 60)
        rate = progress.finished_this_run / minutes
        detail = (
            f"planned {c['planned']:,}  no inputs {c['no_inputs']:,}  collected {c['collected']:,}  "
            f"failed {c['failed']:,}  running {c['submitted'] + c['running']:,}  waiting {c['waiting']:,}  "
            f"{rate:.1f}/min"
        )
        left = self._eta.seconds_left(progress.total - progress.done)
        eta = "" if left is None else f"ETA {duration(left)}"
        self._bar.update(
            self._task, description=description, total=progress.total, completed=progress.done, detail=detail, eta=eta
        )


class AreaBar:
    """The area a grid has tiled so far, against the AOI's area (tiles run a little past the AOI's edge, so
    the bar is full at the last part); silent where stderr is not a terminal, where rich is not even loaded
    (a scripted ``grid`` starts 30 ms sooner)."""

    def __init__(self, name: str, total_km2: float) -> None:
        self._total = max(total_km2, 1e-9)
        self.tiles, self.km2 = 0, 0.0
        self._bar: Any = None
        if not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(file=sys.stderr)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f} %  {task.fields[tiles]:,} tiles"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=True,
        )
        self._task = self._bar.add_task(name, total=self._total, tiles=0)

    def __enter__(self) -> AreaBar:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def counted(self, parts: Iterable[TileSet]) -> Iterator[TileSet]:
        """``parts`` as they come, each counted (``tiles``, ``km2``) once its consumer is done with it."""
        for part in parts:
            yield part
            self.tiles, self.km2 = self.tiles + len(part), self.km2 + part.area_km2
            if self._bar is not None:
                self._bar.update(self._task, completed=min(self.km2, self._total), tiles=self.tiles)
