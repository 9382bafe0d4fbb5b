"""Running one worker until it is told to stop.

SIGTERM (or SIGINT) stops it gracefully: it takes no new job, each job in flight finishes the
batch it is in (one transaction) and returns, and the worker exits once they have, or after
`grace` seconds, when arq cancels what is left and puts it back in the queue. Either way
nothing is left claimed in Redis, so other workers carry on at once; and anything unfinished
is still in PostgreSQL, where the sweeper finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal

from arq.worker import Worker

from actions.settings import load_settings

from .config import WorkerConfig
from .settings import worker_settings
from .state import WorkerState

log = logging.getLogger("journeyflow.worker")


def run(config: WorkerConfig) -> None:
    """Run a worker in this process until SIGTERM or SIGINT. Raises WorkerError (or
    ActionsError for a bad actions settings file) when it cannot start."""
    actions = load_settings(config.actions_settings, os.environ)
    asyncio.run(_serve(config, WorkerState(config, actions)))


async def _serve(config: WorkerConfig, state: WorkerState) -> None:
    await state.start()
    worker = Worker(**worker_settings(config, state), handle_signals=False,
                    job_completion_wait=math.ceil(config.grace))

    def stop(sig: signal.Signals) -> None:
        log.info("%s: finishing the batches in flight (up to %.0f s), taking no new job", sig.name, config.grace)
        state.stopping.set()
        worker.handle_sig_wait_for_completion(sig)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    try:
        # A graceful stop ends by cancelling arq's main task: that is the normal way out.
        with contextlib.suppress(asyncio.CancelledError):
            await worker.async_run()
    finally:
        await worker.close()
        await state.close()
    log.info("stopped: %d jobs complete, %d failed, %d handed back", worker.jobs_complete, worker.jobs_failed,
             worker.jobs_retried)
