"""Every Redis key the workers use, and the defaults, in one place.

All keys of one deployment start with its queue name (`--queue`, default `journeyflow`), so
several deployments (or parallel test runs) can share one Redis. arq's own keys embed our job
ids, which start with the queue name too: `arq:job:<queue>:events:3/16`,
`arq:in-progress:<queue>:...`, `arq:retry:<queue>:...`.
"""

from __future__ import annotations

DEFAULT_QUEUE = "journeyflow"

# Keys, by suffix after the queue name.
QUEUE_SUFFIX = ":queue"  # arq's sorted set of job ids, scored by when each may start
HEALTH_SUFFIX = ":health-check"  # arq's health line (the last worker to write it wins)
LAYOUT_SUFFIX = ":layout"  # "partitions=P": the partition count the whole fleet must share
WORKER_SUFFIX = ":worker:"  # + "<host>:<pid>": one heartbeat per live worker, with a TTL
# Per event job, beside its id (<job id>:poke, <job id>:seen): a counter every push raises after
# its commit, and the last value a finished job saw before the batch that found nothing (push.py).
POKE_SUFFIX = ":poke"
SEEN_SUFFIX = ":seen"

# Job kinds, the second part of a job id: <queue>:<kind>:<lane>.
EVENTS = "events"  # one partition of the users' events: <queue>:events:<k>/<P>
TIMERS = "timers"  # a lane firing due timers (claims are SKIP LOCKED): <queue>:timers:<i>
OUTBOX = "outbox"  # a lane dispatching due outbox rows (claims are leased): <queue>:outbox:<i>
SCHEDULES = "schedules"  # the due schedule ticks (one at a time; ticks lock their row)
SWEEP = "sweep"  # the cron job's name: <queue>:sweep, ids <queue>:sweep:<unix ms>

# Defaults of `journeyflow worker`.
DEFAULT_CONCURRENCY = 8  # jobs at once in one worker (arq's max_jobs; also its database threads)
DEFAULT_PARTITIONS = 16  # event partitions, and lanes for timers and dispatch, fleet-wide
DEFAULT_BATCH = 500  # events, timers or outbox rows per transaction
DEFAULT_JOB_TIMEOUT = 60.0  # seconds; a job killed mid-way is retried this + 10 s later
DEFAULT_GRACE = 30.0  # seconds a SIGTERM waits for jobs in flight before handing them back
BUDGET_SHARE = 0.25  # a job stops taking new batches after this share of its timeout

# How often a worker looks for jobs in the queue: a pushed job waits half of it on average. One
# small sorted-set read per worker each time.
POLL_SECONDS = 0.05
DEFAULT_SWEEP_SECONDS = 1  # how often the fleet's sweeper reads PostgreSQL for waiting work
PUSH_RETRY_SECONDS = 0.02  # how soon a push whose job was still finishing tries again
PUSH_KEY_TTL_SECONDS = 86_400  # poke and seen counters of a partition nobody pushes to expire
HEARTBEAT_SECONDS = 2.0  # how often a worker refreshes its heartbeat key
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS  # a worker silent this long is not counted
PENDING_SCAN = 5_000  # oldest unapplied events the sweeper reads to see which partitions wait
CONFLICT_RETRIES = 5  # batches in a row rolled back by a concurrent writer before a job gives up
