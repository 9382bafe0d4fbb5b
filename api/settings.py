"""What an API process is configured with. Limits follow Segment's, so a pipeline that works
against Segment works here: 32 KB for one message, 500 KB for a batch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from actions.settings import Settings as ActionSettings
from dsl.validate import Catalog
from engine.clock import Clock, SystemClock

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Settings:
    database_url: str
    clock: Clock = field(default_factory=SystemClock)
    max_message_bytes: int = 32 * KIB  # one track / identify / alias call
    max_batch_bytes: int = 500 * KIB  # one /v1/batch call
    max_batch_messages: int = 2_500  # 500 KB of the smallest messages Segment sends
    max_management_bytes: int = 1 * MIB  # journey text and other JSON bodies
    max_csv_bytes: int = 64 * MIB  # a coupon-code upload, streamed line by line
    signature_tolerance_seconds: int = 300  # how old (or new) a signed request's timestamp may be
    key_cache_seconds: float = 5.0  # a revoked key keeps working at most this long in a running process
    group_commit_max_messages: int = 5_000  # messages per shared transaction
    run_engine: bool = False  # apply events, fire timers and schedules in this process
    run_dispatcher: bool = False  # send outbox rows from this process (see actions/)
    rules_backend: str = "compiled"  # what evaluates conditions in this process's engine: compiled or durable
    default_zone: str = "UTC"  # the installation's time zone, for profiles and journeys without a known one
    actions: ActionSettings | None = None  # the providers and their settings; None: every channel logged
    catalog: Catalog | None = None  # templates, pools, traits and event properties (catalog.toml); None: unknown
    engine_batch: int = 200  # events or timers per engine transaction (SQLite holds its one writer that long)
    engine_idle_seconds: float = 0.2  # sleep between engine passes that found nothing to do
    # Workers on Redis (issue 8, docs/deployment.md): when set, /readyz and /metrics report their queue.
    redis_url: str | None = field(default_factory=lambda: os.environ.get("JOURNEYFLOW_REDIS_URL") or None)
    queue: str = field(default_factory=lambda: os.environ.get("JOURNEYFLOW_QUEUE") or "journeyflow")
    # Mark the builder's cookies Secure even on plain-HTTP requests: behind a TLS proxy whose
    # X-Forwarded-Proto this process does not trust, the browser still speaks HTTPS (issue 17).
    secure_cookies: bool = False
