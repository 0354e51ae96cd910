"""One `doctor` check's result, and the three ways a check ends: passed, failed (with the
fix), or skipped because an earlier check failed (the fix: that one first)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """``{name, ok, detail, fix}`` as `doctor --format json` prints it; fix None when ok."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def skipped(name: str, why: str, first: str) -> Check:
    """A check that cannot run because the check ``first`` failed."""
    return Check(name, False, f"skipped: {why}", f"fix “{first}” first")


def count(number: int, noun: str) -> str:
    """``1 pipeline``, ``2 pipelines``: a number and its noun, plural unless one."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
