"""Message text rendered from Jinja2 in a sandbox.

Journeys are written by marketers and, through the builder, by anyone with a login: a template
must not reach Python internals (`{{ user.__class__ }}`), mutate what it is given, run forever
or build a gigabyte. The language and its bounds are `dsl.templates`, the same definition the
journey checker reads templates with: a template it refuses is refused here too (named
templates from the settings are read the same way when the settings load), unsafe access fails the
message instead of rendering as blank text, and every render runs within a budget of loop turns,
operations, text and time. A broken template fails that one message with a reason, never the
batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2

from dsl import templates

MAX_OUTPUT_CHARS = 10_000
COMPILED_CACHE_SIZE = 4_096  # distinct message texts kept compiled


class TemplateFailed(Exception):
    """This message cannot be rendered; the message says why."""


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(text: str) -> jinja2.Template:
    """Compiling costs about a millisecond, rendering a few microseconds, and a journey sends the
    same few texts to thousands of users: keep the compiled ones (a refused template is not cached)."""
    return templates.compile_template(text)


def render(text: str, user: Mapping[str, Any], event: Mapping[str, Any] | None,
           results: Mapping[str, Any]) -> str:
    """Render `text` with `user`, `event` and the named step results in scope."""
    try:
        template = _compiled(text)
        output = templates.render(template, {**results, "user": user, "event": event or {}})
    except jinja2.TemplateError as error:  # unsafe access and every bound too (dsl.templates.TemplateRefused)
        raise TemplateFailed(f"template error: {error}") from error
    except RecursionError as error:
        raise TemplateFailed("template error: it nests or recurses too deeply") from error
    except Exception as error:  # the template's author chose the operation: whatever it raises is theirs
        raise TemplateFailed(f"template error: {type(error).__name__}: {error}") from error
    if len(output) > MAX_OUTPUT_CHARS:
        raise TemplateFailed(f"the rendered message is longer than {MAX_OUTPUT_CHARS} characters")
    return output
