"""What the builder keeps in memory for the life of the app: the caches of form suggestions and
condition fields. Kept on the app's state, so two apps in one process (tests) share nothing. (The
login throttle's counts are in the database, shared by every process: `throttle`.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from .drafts import SuggestionCache
from .field_catalog import FieldCache


@dataclass
class BuilderState:
    suggestions: SuggestionCache = field(default_factory=SuggestionCache)
    fields: FieldCache = field(default_factory=FieldCache)  # what conditions can be about, with types


def builder_state(request: Request) -> BuilderState:
    """The app's builder state, made on first use (no await in between, so no race)."""
    state = request.app.state
    found = getattr(state, "builder", None)
    if not isinstance(found, BuilderState):
        found = BuilderState()
        state.builder = found
    return found
