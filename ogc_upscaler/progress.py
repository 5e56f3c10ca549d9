"""The progress bar of a run on the terminal: done, failed, running, rate and ETA."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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
