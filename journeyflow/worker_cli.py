"""`journeyflow worker`: one arq worker that applies events, fires timers, runs schedule ticks
and dispatches the outbox, for deployments on PostgreSQL that outgrow one process. Run as many
as needed, on any machines, against one Redis and one PostgreSQL (docs/deployment.md)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from actions.settings import SETTINGS_FILE_ENV
from workers.constants import (
    DEFAULT_BATCH,
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_PARTITIONS,
    DEFAULT_QUEUE,
    DEFAULT_SWEEP_SECONDS,
)

from .options import database_options, rules_backend_option, timezone_option

REDIS_URL_ENV = "JOURNEYFLOW_REDIS_URL"
QUEUE_ENV = "JOURNEYFLOW_QUEUE"


@click.command()
@click.option("--redis", "redis_url", envvar=REDIS_URL_ENV, required=True,
              help=f"Redis URL of the job queue, e.g. redis://127.0.0.1:6379/0 (also ${REDIS_URL_ENV}).")
@database_options  # a worker wants PostgreSQL: postgresql+psycopg://...
@click.option("--concurrency", default=DEFAULT_CONCURRENCY, show_default=True, help="Jobs at once in this worker.")
@click.option("--partitions", default=DEFAULT_PARTITIONS, show_default=True,
              help="Event partitions (and timer and dispatch lanes) of the whole fleet: the same on every worker.")
@click.option("--queue", envvar=QUEUE_ENV, default=DEFAULT_QUEUE, show_default=True,
              help=f"Queue name; every Redis key of this deployment starts with it (also ${QUEUE_ENV}).")
@click.option("--batch", default=DEFAULT_BATCH, show_default=True,
              help="Events, timers or outbox rows per transaction.")
@click.option("--job-timeout", default=DEFAULT_JOB_TIMEOUT, show_default=True,
              help="Seconds a job may run; a job lost with its worker is retried this + 10 s later.")
@click.option("--grace", default=DEFAULT_GRACE, show_default=True,
              help="Seconds SIGTERM waits for jobs in flight before handing them back.")
@click.option("--sweep-seconds", default=DEFAULT_SWEEP_SECONDS, show_default=True, type=click.IntRange(1, 60),
              help="Seconds between reads of PostgreSQL for waiting timers, outbox rows and missed events "
                   "(events stored through `serve --redis` wake their job at once).")
@click.option("--actions-settings", "actions_path", envvar=SETTINGS_FILE_ENV,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"Providers' settings (TOML; also ${SETTINGS_FILE_ENV}). Without it every message is logged.")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@rules_backend_option
@timezone_option
def worker(redis_url: str, database_url: str, concurrency: int, partitions: int, queue: str, batch: int,
           job_timeout: float, grace: float, sweep_seconds: int, actions_path: Path | None, log_level: str,
           rules_backend: str, default_zone: str) -> None:
    """Run a worker: events, timers, schedules and dispatch as arq jobs on Redis, until SIGTERM."""
    from actions.errors import ActionsError
    from workers.config import WorkerConfig
    from workers.errors import WorkerError
    from workers.runner import run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(WorkerConfig(redis_url=redis_url, database_url=database_url, queue=queue, concurrency=concurrency,
                         partitions=partitions, batch=batch, job_timeout=job_timeout, grace=grace,
                         sweep_seconds=sweep_seconds, actions_settings=actions_path, rules_backend=rules_backend,
                         default_zone=default_zone))
    except (WorkerError, ActionsError) as error:
        raise click.ClickException(str(error)) from None
