"""Scale-out: the engine and the dispatcher run as arq jobs on Redis, with PostgreSQL as the truth.

Redis only says *what to look at next*; every fact (an event applied, a timer fired, a message
sent) is a PostgreSQL row changed in one transaction. So a job that runs twice, or a Redis that
forgets everything, costs a little work and never a duplicate or a loss: the sweeper re-reads
PostgreSQL every second and enqueues again whatever still needs doing. Servers push new events'
partitions at once (push.py); the sweep is what catches anything a push missed.

| module | what it holds |
| --- | --- |
| `constants.py` | every Redis key and default, with what it is |
| `config.py` | `WorkerConfig`: one worker's settings, checked |
| `errors.py` | `WorkerError` and its family |
| `plan.py` | pure: a backlog seen in PostgreSQL -> the jobs to enqueue, with their ids |
| `backlog.py` | the sweeper's PostgreSQL reads |
| `state.py` | what a worker process holds: the database, a pool of runtimes, the dispatcher |
| `jobs.py` | the arq job functions, each working a batch at a time |
| `settings.py` | `worker_settings(config, state)`: arq's WorkerSettings for a config |
| `runner.py` | running a worker until SIGTERM, with a graceful hand-back |
| `push.py` | `Pusher`: after a commit of events, enqueue their partitions' jobs at once (not at the sweep) |
| `health.py` | heartbeats, and queue depth / lag / live workers for `/readyz` and `/metrics` |

docs/deployment.md explains the design.
"""
