"""A bot that watches itself (issue 12 item 8): is prsteward keeping up?

``check(db, now, cadence_seconds)`` reads the ledger (``ledger.selfcheck``) and judges:

- the age of the last successful sweep, per installation (its stalest repository); a sweep
  overdue by more than ``OVERDUE_CADENCES`` full-sweep cadences, or a repository never swept
  that long after it was added, makes prsteward *behind*;
- the webhook backlog: deliveries waiting more than ``BACKLOG_LIMIT_SECONDS`` make it behind;
- the rate-limit reserve per installation and resource (reported, and named when it is below
  ``LOW_RESERVE_SHARE`` of the limit; a low reserve alone is not "behind": the poller slows down
  on purpose).

``/readyz`` answers 503 with the reasons while behind (``Server.health`` is
:meth:`SelfCheck.readiness`); ``/metrics`` has ``prsteward_behind`` and the dashboard shows the
same line, "prsteward is behind: <reasons>".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.db import Ledger
from ledger.selfcheck import HealthRead, read_health

OVERDUE_CADENCES = 3
BACKLOG_LIMIT_SECONDS = 300.0
LOW_RESERVE_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class InstallationSweep:
    installation_id: int | None
    repositories: int
    stalest: str  # the repository swept longest ago (or never)
    age_seconds: float | None  # since its last good sweep; None: never swept


@dataclass(frozen=True, slots=True)
class Health:
    """The judged health: numbers for people, ``behind`` reasons for machines."""

    at: datetime
    cadence_seconds: float
    sweeps: tuple[InstallationSweep, ...]
    pending_deliveries: int
    backlog_seconds: float  # age of the oldest waiting delivery (0: none)
    reserve: tuple[dict[str, Any], ...]
    behind: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.behind

    def summary_line(self) -> str:
        """The line the summary issue / report shows."""
        if self.ok:
            return "prsteward is keeping up."
        return "prsteward is behind: " + "; ".join(self.behind)

    def as_json(self) -> dict[str, Any]:
        return {
            "behind": list(self.behind),
            "cadence_seconds": self.cadence_seconds,
            "sweeps": [
                {
                    "installation": s.installation_id,
                    "repositories": s.repositories,
                    "stalest": s.stalest,
                    "last_ok_age_seconds": None if s.age_seconds is None else round(s.age_seconds),
                }
                for s in self.sweeps
            ],
            "webhook_backlog": {
                "pending": self.pending_deliveries,
                "oldest_age_seconds": round(self.backlog_seconds),
            },
            "rate_limit_reserve": list(self.reserve),
        }


def judge(read: HealthRead, now: datetime, cadence_seconds: float) -> Health:
    """Pure: the ledger's figures in, the health (and why it is behind) out."""
    limit = OVERDUE_CADENCES * cadence_seconds
    behind: list[str] = []
    by_installation: dict[int | None, list[tuple[float | None, str, float]]] = {}
    for sweep in read.sweeps:
        age = (
            None
            if sweep.last_sweep_ok_at is None
            else (now - sweep.last_sweep_ok_at).total_seconds()
        )
        known_for = (now - sweep.created_at).total_seconds()
        by_installation.setdefault(sweep.installation_id, []).append(
            (age, sweep.repository, known_for)
        )
    sweeps = []
    for installation_id, items in sorted(by_installation.items(), key=lambda kv: kv[0] or 0):
        never = [i for i in items if i[0] is None]
        stalest = never[0] if never else max(items, key=lambda i: i[0] or 0.0)
        sweeps.append(InstallationSweep(installation_id, len(items), stalest[1], stalest[0]))
        for age, repository, known_for in items:
            if age is not None and age > limit:
                behind.append(
                    f"installation {installation_id}: {repository} last swept "
                    f"{age / 60:.0f} min ago (cadence {cadence_seconds / 60:.0f} min)"
                )
            elif age is None and known_for > limit:
                behind.append(
                    f"installation {installation_id}: {repository} never swept in "
                    f"{known_for / 60:.0f} min"
                )
    backlog = 0.0
    if read.oldest_pending_at is not None:
        backlog = max(0.0, (now - read.oldest_pending_at).total_seconds())
        if backlog > BACKLOG_LIMIT_SECONDS:
            behind.append(
                f"{read.pending_deliveries} webhook deliveries waiting, the oldest "
                f"{backlog / 60:.0f} min"
            )
    reserve = []
    for sample in read.rate:
        share = (
            sample.remaining / sample.limit
            if sample.remaining is not None and sample.limit
            else None
        )
        reserve.append(
            {
                "installation": sample.installation_id,
                "resource": sample.resource,
                "remaining": sample.remaining,
                "limit": sample.limit,
                "low": share is not None and share < LOW_RESERVE_SHARE,
                "sampled_at": sample.sampled_at.isoformat(),
            }
        )
    return Health(
        at=now,
        cadence_seconds=cadence_seconds,
        sweeps=tuple(sweeps),
        pending_deliveries=read.pending_deliveries,
        backlog_seconds=backlog,
        reserve=tuple(reserve),
        behind=tuple(behind),
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SelfCheck:
    """Reads and judges the ledger on demand (``/readyz``, the dashboard, the report)."""

    db: Ledger
    cadence_seconds: float = 3600.0
    clock: Callable[[], datetime] = utcnow

    async def check(self) -> Health:
        return judge(await read_health(self.db), self.clock(), self.cadence_seconds)

    async def readiness(self) -> tuple[list[str], dict[str, Any]]:
        """``Server.health``: the behind reasons (503 when any) and the figures."""
        health = await self.check()
        return [f"behind: {reason}" for reason in health.behind], health.as_json()
