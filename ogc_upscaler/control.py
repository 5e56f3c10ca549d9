"""Requests to the manager of a store: retry failed jobs, cancel, pause or resume submissions.

The manager is the only writer of job state, so a watch page (or anything else) that wants jobs
retried does not write the store: it leaves a request in a folder beside the store, and the
manager takes it on its next pass and answers it. A request is a JSON file written whole
(a temporary file renamed into place); the manager claims it by renaming it, applies it, writes
the answer, and removes the claim. A manager that dies while applying one leaves the claim:
the next manager answers it as lost instead of applying it again, so a request is applied at
most once (ask again after reading the store).

No manager attached: requests wait in the folder until ``run`` starts one, which takes them first.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ogc_upscaler.errors import InvalidInput

#: Answers older than this are removed when new ones are written.
KEEP_ANSWERS_S = 3600.0


class Action(StrEnum):
    """What a request asks the manager to do."""

    RETRY = "retry"  # failed jobs (of one cause, if given) back to planned with fresh attempts
    CANCEL = "cancel"  # every unfinished job, on the backend too
    PAUSE = "pause"  # no new submissions until resumed (jobs in flight go on)
    RESUME = "resume"


@dataclass(frozen=True)
class Request:
    """One request: its id, what it asks, for which cause (retries), and when it was asked."""

    request_id: str
    action: Action
    cause: str | None = None
    asked_at: float = 0.0

    @classmethod
    def new(cls, action: str, cause: str | None = None) -> Request:
        """A request for ``action`` (one of :class:`Action`'s values), refused if it is none of them."""
        try:
            chosen = Action(action)
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise InvalidInput(f"unknown action {action!r}", hint=f"ask one of: {known}") from None
        if cause is not None and chosen is not Action.RETRY:
            raise InvalidInput(f"a cause only narrows a retry, not a {chosen.value}", hint="leave the cause out")
        return cls(f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", chosen, cause, time.time())

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def read(cls, path: Path) -> Request:
        """The request in ``path``, named by the file's own name (whatever its body says); raises
        :class:`UnreadableRequest` for anything that is not a request."""
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            cause = data.get("cause")
            if cause is not None and not isinstance(cause, str):
                raise TypeError("cause is not text")
            return cls(path.name.partition(".")[0], Action(data["action"]), cause, float(data.get("asked_at") or 0.0))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise UnreadableRequest(f"{path.name}: {err}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        return cls(data["request_id"], Action(data["action"]), data.get("cause"), float(data.get("asked_at", 0.0)))


class UnreadableRequest(Exception):
    """A file in the request folder that is not a request (written by hand, or by something else)."""


@dataclass(frozen=True)
class Answer:
    """What the manager did with a request: whether it was applied, and a sentence saying what happened."""

    request_id: str
    applied: bool
    message: str
    answered_at: float


@dataclass(frozen=True)
class Shown:
    """A request as a reader sees it: the request, and its answer once there is one."""

    request: Request
    answer: Answer | None


class Requests:
    """The request folder of one store, ``STORE.requests/`` beside it."""

    def __init__(self, store: Path) -> None:
        self.folder = store.with_name(store.name + ".requests")

    # -- asking (anyone) -------------------------------------------------------------------------

    def ask(self, request: Request) -> Request:
        """Leave a request for the manager."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _write(self.folder / f"{request.request_id}.json", request.to_json())
        return request

    def shown(self, limit: int = 20) -> list[Shown]:
        """The latest requests, newest first, with their answers."""
        if not self.folder.is_dir():
            return []
        latest: dict[str, str] = {}
        for path in self.folder.iterdir():
            stem, _, suffix = path.name.partition(".")
            if suffix in _RANK and _RANK[suffix] > _RANK.get(latest.get(stem, ""), -1):
                latest[stem] = suffix
        out = []
        for stem in sorted(latest, reverse=True)[:limit]:
            path = self.folder / f"{stem}.{latest[stem]}"
            try:
                if latest[stem] == "done":
                    data = json.loads(path.read_text())
                    out.append(Shown(Request.from_dict(data["request"]), Answer(**data["answer"])))
                else:
                    out.append(Shown(Request.read(path), None))
            except (OSError, ValueError, KeyError, TypeError, UnreadableRequest):
                continue  # moved on between listing and reading (shown at the next look), or not a request
        return out

    # -- taking (the manager) --------------------------------------------------------------------

    def take(self) -> Iterator[Request]:
        """Claim waiting requests, oldest first; answer each with :meth:`answered` once it is applied.

        Claims left by a manager that stopped are answered as lost first; a file that is no request is
        answered as unreadable, never raised: a stray file never stops the manager.
        """
        if not self.folder.is_dir():
            return
        names = sorted(p.name for p in self.folder.iterdir())
        done = {n.partition(".")[0] for n in names if n.endswith(".done")}
        for name in names:
            stem, _, suffix = name.partition(".")
            path = self.folder / name
            if suffix == "taken":
                if stem in done:  # answered, then stopped before letting go of the claim
                    path.unlink(missing_ok=True)
                    continue
                try:
                    lost = Request.read(path)
                except (FileNotFoundError, UnreadableRequest):
                    lost = Request(stem, Action.RETRY)
                self.answered(lost, False, "lost: the manager stopped while applying it; read the states, ask again")
            if suffix != "json":
                continue
            claimed = path.with_suffix(".taken")
            try:
                path.rename(claimed)
                _sync(self.folder)  # the claim survives a power cut as the store's change would: applied once
                request = Request.read(claimed)
            except FileNotFoundError:
                continue
            except UnreadableRequest as err:
                self.answered(Request(stem, Action.RETRY), False, f"unreadable request ({err})")
                continue
            yield request

    def answered(self, request: Request, applied: bool, message: str) -> None:
        """Record what was done with a claimed request, and forget answers older than an hour."""
        answer = Answer(request.request_id, applied, message, time.time())
        _write(
            self.folder / f"{request.request_id}.done",
            json.dumps({"request": asdict(request), "answer": asdict(answer)}),
        )
        (self.folder / f"{request.request_id}.taken").unlink(missing_ok=True)
        old = time.time() - KEEP_ANSWERS_S
        for path in self.folder.glob("*.done"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < old:
                    path.unlink()


#: A request's files, in the order it moves through them.
_RANK = {"json": 0, "taken": 1, "done": 2}


def _sync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
