"""Journey work done on a worker thread, never on the event loop.

Reading, checking and drawing a journey costs time that grows with its text (a 200-step
journey takes a tenth of a second), and the event loop that runs the builder's handlers also
accepts every event: work done on it stalls intake for everyone. On a thread it shares the
interpreter (the GIL switches every few milliseconds), so intake slows a little instead of
stopping.
"""

from __future__ import annotations

from starlette.requests import Request

from api.services import services

from . import canvas as cv


async def canvas_of(request: Request, source: str) -> cv.Canvas:
    """`canvas.build(source)`, on a worker thread."""
    return await services(request).call(cv.build, source)

