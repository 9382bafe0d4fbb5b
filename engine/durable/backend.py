"""Which rules backend evaluates journeys: the `rules_backend` setting and its factory.

`compiled` (the default) is `engine.matcher.CompiledMatcher`; `durable` is `DurableMatcher`,
which needs the optional `durable` extra (durable_rules) installed. The setting comes from
`--rules-backend` or, failing that, the environment variable below.
"""

from __future__ import annotations

import os
from typing import Final

from ..matcher import CompiledMatcher, Matcher

RULES_BACKEND_ENV: Final = "JOURNEYFLOW_RULES_BACKEND"
RULES_BACKENDS: Final = ("compiled", "durable")
DEFAULT_RULES_BACKEND: Final = "compiled"


def rules_backend_setting() -> str:
    """The backend named by the environment, else the default; an unknown name is an error."""
    name = os.environ.get(RULES_BACKEND_ENV, "").strip() or DEFAULT_RULES_BACKEND
    if name not in RULES_BACKENDS:
        raise ValueError(f"{RULES_BACKEND_ENV}={name!r}: the rules backend is one of {', '.join(RULES_BACKENDS)}")
    return name


def make_matcher(backend: str) -> Matcher:
    if backend == "compiled":
        return CompiledMatcher()
    if backend == "durable":
        from .matcher import DurableMatcher

        return DurableMatcher()
    raise ValueError(f"unknown rules backend {backend!r}: one of {', '.join(RULES_BACKENDS)}")
