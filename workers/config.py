"""One worker's settings, checked once at start so that a bad value stops it with a message."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url

from engine.durable.backend import DEFAULT_RULES_BACKEND, RULES_BACKENDS

from .constants import (
    BUDGET_SHARE,
    DEFAULT_BATCH,
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_PARTITIONS,
    DEFAULT_QUEUE,
    DEFAULT_SWEEP_SECONDS,
    HEALTH_SUFFIX,
    LAYOUT_SUFFIX,
    QUEUE_SUFFIX,
)
from .errors import ConfigInvalid


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    database_url: str
    queue: str = DEFAULT_QUEUE
    concurrency: int = DEFAULT_CONCURRENCY
    partitions: int = DEFAULT_PARTITIONS
    batch: int = DEFAULT_BATCH
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    grace: float = DEFAULT_GRACE
    actions_settings: Path | None = None
    rules_backend: str = DEFAULT_RULES_BACKEND  # what evaluates conditions: compiled or durable
    default_zone: str = "UTC"  # the installation's time zone (--timezone)
    # Seconds between sweeps. Pushes wake event jobs at once; the sweep is what finds the rest
    # (timers, schedules, the outbox) and any push that was lost.
    sweep_seconds: int = DEFAULT_SWEEP_SECONDS

    def __post_init__(self) -> None:
        for name in ("concurrency", "partitions", "batch"):
            if getattr(self, name) < 1:
                raise ConfigInvalid(f"--{name} must be at least 1, got {getattr(self, name)}")
        if not 1 <= self.sweep_seconds <= 60:
            raise ConfigInvalid(f"--sweep-seconds must be 1 to 60, got {self.sweep_seconds}")
        if self.job_timeout <= 0 or self.grace < 0:
            raise ConfigInvalid("--job-timeout must be positive and --grace not negative")
        if not self.queue or any(c.isspace() or c in "*?[]" for c in self.queue):
            raise ConfigInvalid(f"--queue {self.queue!r}: no spaces or glob characters")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigInvalid(f"--redis {self.redis_url!r}: expected a redis:// URL")
        if self.rules_backend not in RULES_BACKENDS:
            raise ConfigInvalid(f"--rules-backend {self.rules_backend!r}: one of {', '.join(RULES_BACKENDS)}")
        if make_url(self.database_url).get_backend_name() != "postgresql":
            # Workers on several machines need a server database; SQLite's single writer is the
            # embedded default's whole design (`journeyflow serve` without --redis).
            raise ConfigInvalid("workers need PostgreSQL (--database postgresql+psycopg://...)")

    @property
    def queue_key(self) -> str:
        return self.queue + QUEUE_SUFFIX

    @property
    def health_key(self) -> str:
        return self.queue + HEALTH_SUFFIX

    @property
    def layout_key(self) -> str:
        return self.queue + LAYOUT_SUFFIX

    @property
    def layout(self) -> str:
        return f"partitions={self.partitions}"

    @property
    def budget_seconds(self) -> float:
        """How long a job keeps taking batches: well inside its timeout, so it ends on its own."""
        return self.job_timeout * BUDGET_SHARE
