"""Progress bars on the terminal: a run's (done, failed, running, rate and ETA) and a grid's (area tiled)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from ogc_upscaler.grid import TileSet
    from ogc_upscaler.manager import Progress as RunProgress


class ProgressBar:
    """A rich progress bar fed by the manager's progress callback; silent where stderr is not a terminal."""

    def __init__(self, name: str) -> None:
        console = Console(file=sys.stderr)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            refresh_per_second=4,
        )
        self._task = self._bar.add_task(name, total=None, detail="")
        self._start = time.monotonic()

    def __enter__(self) -> ProgressBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def update(self, progress: RunProgress) -> None:
        """Show the manager's counts."""
        c = progress.counts
        minutes = max(1e-9, (time.monotonic() - self._start) / 60)
        rate = progress.finished_this_run / minutes
        detail = (
            f"collected {c['collected']:,}  failed {c['failed']:,}  "
            f"running {c['submitted'] + c['running']:,}  waiting {c['waiting']:,}  {rate:.1f}/min"
        )
        self._bar.update(self._task, total=progress.total, completed=progress.done, detail=detail)


class AreaBar:
    """The area a grid has tiled so far, against the AOI's area (tiles run a little past the AOI's edge, so
    the bar is full at the last part); silent where stderr is not a terminal."""

    def __init__(self, name: str, total_km2: float) -> None:
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
        self._total = max(total_km2, 1e-9)
        self._task = self._bar.add_task(name, total=self._total, tiles=0)
        self.tiles, self.km2 = 0, 0.0

    def __enter__(self) -> AreaBar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def counted(self, parts: Iterable[TileSet]) -> Iterator[TileSet]:
        """``parts`` as they come, each counted (``tiles``, ``km2``) once its consumer is done with it."""
        for part in parts:
            yield part
            self.tiles, self.km2 = self.tiles + len(part), self.km2 + part.area_km2
            self._bar.update(self._task, completed=min(self.km2, self._total), tiles=self.tiles)
