"""Running the same work on several threads at once, for the tests of concurrent claims."""

from __future__ import annotations

import threading
from collections.abc import Callable

JOIN_SECONDS = 120


def race(threads: int, work: Callable[[int], None]) -> None:
    """Run `work(worker)` on `threads` threads released together by a barrier, and re-raise the
    first error any of them met here, in the test's thread (an assertion failing on a worker
    thread would otherwise only be printed)."""
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            start.wait()
            work(number)
        except BaseException as error:
            failures.append(error)

    running = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(JOIN_SECONDS)
    if failures:
        raise failures[0]
