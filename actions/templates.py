"""Message text rendered from Jinja2 in a sandbox.

Journeys are written by marketers and, through the builder, by anyone with a login: a template
must not reach Python internals (`{{ user.__class__ }}`), mutate what it is given, or run
forever. The immutable sandbox refuses unsafe attribute access and mutation; a length cap on
output and range() stops runaway loops. A broken template fails that one message with a
reason, never the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RANGE = 1_000
MAX_OUTPUT_CHARS = 10_000
COMPILED_CACHE_SIZE = 4_096  # distinct message texts kept compiled


class TemplateFailed(Exception):
    """This message cannot be rendered; the message says why."""


class _Environment(ImmutableSandboxedEnvironment):
    def call(self, context: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        if obj is range and (len(args) > 3 or any(isinstance(a, int) and abs(a) > MAX_RANGE for a in args)):
            raise jinja2.exceptions.SecurityError(f"range() is limited to {MAX_RANGE}")
        return super().call(context, obj, *args, **kwargs)


@cache
def _environment() -> _Environment:
    return _Environment(autoescape=False, undefined=jinja2.ChainableUndefined)


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(text: str) -> jinja2.Template:
    """Compiling costs about a millisecond, rendering a few microseconds, and a journey sends the
    same few texts to thousands of users: keep the compiled ones (a syntax error is not cached)."""
    return _environment().from_string(text)


def render(text: str, user: Mapping[str, Any], event: Mapping[str, Any] | None,
           results: Mapping[str, Any]) -> str:
    """Render `text` with `user`, `event` and the named step results in scope."""
    try:
        template = _compiled(text)
        output = template.render({**results, "user": user, "event": event or {}})
    except jinja2.TemplateError as error:
        raise TemplateFailed(f"template error: {error}") from error
    except (TypeError, ValueError, ArithmeticError, OverflowError) as error:
        raise TemplateFailed(f"template error: {type(error).__name__}: {error}") from error
    if len(output) > MAX_OUTPUT_CHARS:
        raise TemplateFailed(f"the rendered message is longer than {MAX_OUTPUT_CHARS} characters")
    return output
