"""Which rules backend evaluates journeys: the `rules_backend` setting and its factory.

`compiled` (the default) is `engine.matcher.CompiledMatcher`; `durable` is `DurableMatcher`,
which needs the optional `durable` extra (durable_rules) installed. The setting is the
`--rules-backend` option of `serve`, `worker`, `process` and `simulate`, else the environment
variable below, else `rules_backend` in the settings file (journeyflow/config.py).
"""

from __future__ import annotations

from typing import Final

from ..matcher import CompiledMatcher, Matcher

RULES_BACKEND_ENV: Final = "JOURNEYFLOW_RULES_BACKEND"
RULES_BACKENDS: Final = ("compiled", "durable")
DEFAULT_RULES_BACKEND: Final = "compiled"


def make_matcher(backend: str) -> Matcher:
    if backend == "compiled":
        return CompiledMatcher()
    if backend == "durable":
        from .matcher import DurableMatcher

        return DurableMatcher()
    raise ValueError(f"unknown rules backend {backend!r}: one of {', '.join(RULES_BACKENDS)}")
