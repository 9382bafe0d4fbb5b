"""The fields a condition can be about: profile traits and each event's properties, with a type.

A condition editor offers operators that fit a field's type (a date gets "more than N days
ago", a list gets "has tag"), so the builder must know the types. They come from two places:
the catalog (`catalog.toml`, read into `Settings.catalog`), which a team writes on purpose, and
what the data shows: the newest events' properties and a sample of the newest profiles' traits,
whose values give a type. The catalog beats inference: a property written down there is
taken as written, whatever a stray event sent.

Reading is bounded (the newest events and profiles only), so it costs the same at any size,
and cached for a few seconds like the form suggestions (`drafts.SuggestionCache`).
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine, desc, select

from api.services import Services
from dsl.validate import Catalog, FieldSpec
from engine.messages import EVENT_TYPES
from storage.tables import events, profiles

RECENT_EVENTS = 5_000  # the newest events whose properties are looked at
RECENT_PROFILES = 500  # the newest profiles whose traits are looked at
CACHE_SECONDS = 30.0
MAX_PROPERTIES = 40  # per event name, as in the form suggestions
MAX_TRAITS = 80
MAX_KNOWN = 20  # more distinct values than this: a free text, not a list to pick from
MAX_KNOWN_TAGS = 60
MAX_VALUE_LENGTH = 40  # longer texts are never offered as known values
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
TAGS = "tags"


@dataclass(frozen=True)
class Field:
    """One field a condition can name. `path` is what the DSL writes ("user.first_name",
    "event.category"); `label` the plain words a marketer reads ("first name")."""

    path: str
    type: str  # "text" | "number" | "bool" | "date" | "list"
    values: tuple[str, ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.path.split(".", 1)[1] if "." in self.path else self.path


@dataclass(frozen=True)
class Fields:
    traits: Mapping[str, Field] = field(default_factory=dict)
    events: Mapping[str, Mapping[str, Field]] = field(default_factory=dict)

    def trait(self, name: str) -> Field | None:
        return self.traits.get(name)

    def of_event(self, event: str) -> list[Field]:
        return sorted(self.events.get(event, {}).values(), key=lambda f: f.path)

    def all_traits(self) -> list[Field]:
        return sorted(self.traits.values(), key=lambda f: (f.path != "user.tags", f.path))

    def by_path(self, path: str, event: str | None = None) -> Field | None:
        """The field a condition's path names: a trait, or a property of `event`."""
        root, _, name = path.partition(".")
        if root == "user":
            return self.traits.get(name)
        if root == "event" and event is not None:
            return self.events.get(event, {}).get(name)
        return None


def label_of(name: str) -> str:
    """Plain words for a field name: `last_purchase_at` reads "last purchase at"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").strip().lower() or name


# --------------------------------------------------------------------------- inference (pure)


def type_of_value(value: object) -> str | None:
    """The field type a single value suggests; None when it tells nothing (null, objects)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "date" if _DATE.match(value) else "text"
    return None


def infer(values: Iterable[object], max_known: int = MAX_KNOWN) -> FieldSpec | None:
    """The spec a field's seen values suggest. Mixed types read as text (anything compares
    as text), except numbers seen beside nulls. A text with few short distinct values keeps
    them as known values; a list keeps its short string items."""
    kinds: set[str] = set()
    known: set[str] = set()
    overflow = False
    for value in values:
        kind = type_of_value(value)
        if kind is None:
            continue
        kinds.add(kind)
        items = value if isinstance(value, list) else [value] if kind == "text" else []
        for item in items:
            if isinstance(item, str) and len(item) <= MAX_VALUE_LENGTH and not overflow:
                known.add(item)
                overflow = len(known) > max_known
    if not kinds:
        return None
    kind = kinds.pop() if len(kinds) == 1 else "text"
    shown = () if overflow or kind not in ("text", "list") else tuple(sorted(known))
    return FieldSpec(kind, shown)


def _field(root: str, name: str, spec: FieldSpec) -> Field:
    return Field(f"{root}.{name}", spec.type, tuple(spec.values), label_of(name))


def merge(catalog: Catalog | None, seen_traits: Mapping[str, FieldSpec],
          seen_events: Mapping[str, Mapping[str, FieldSpec]]) -> Fields:
    """The catalog's fields, with the seen ones it does not name added."""
    listed_traits = dict(catalog.traits or {}) if catalog else {}
    listed_events = {k: dict(v) for k, v in (catalog.events or {}).items()} if catalog else {}
    traits = {name: _field("user", name, spec) for name, spec in {**seen_traits, **listed_traits}.items()}
    names = sorted(set(seen_events) | set(listed_events))
    by_event = {
        event: {name: _field("event", name, spec)
                for name, spec in {**seen_events.get(event, {}), **listed_events.get(event, {})}.items()}
        for event in names
    }
    return Fields(traits, by_event)


# --------------------------------------------------------------------------- reading (I/O)


def _seen_events(db: Engine) -> dict[str, dict[str, FieldSpec]]:
    values: dict[str, dict[str, list[object]]] = defaultdict(lambda: defaultdict(list))
    with db.connect() as conn:
        recent = (select(events.c.name, events.c.properties).where(events.c.type.in_(sorted(EVENT_TYPES)))
                  .order_by(desc(events.c.id)).limit(RECENT_EVENTS))
        for name, properties in conn.execute(recent):
            if not name or not isinstance(properties, dict):
                continue
            seen = values[str(name)]
            for key, value in properties.items():
                if key in seen or len(seen) < MAX_PROPERTIES:
                    seen[str(key)].append(value)
    return {event: {k: spec for k, vs in props.items() if (spec := infer(vs)) is not None}
            for event, props in values.items()}


def _seen_traits(db: Engine) -> dict[str, FieldSpec]:
    values: dict[str, list[object]] = defaultdict(list)
    tags: list[object] = []
    with db.connect() as conn:
        newest = select(profiles.c.traits, profiles.c.tags).order_by(desc(profiles.c.id)).limit(RECENT_PROFILES)
        for traits, tag_list in conn.execute(newest):
            if isinstance(traits, dict):
                for key, value in traits.items():
                    if key in values or len(values) < MAX_TRAITS:
                        values[str(key)].append(value)
            if isinstance(tag_list, list):
                tags.append(tag_list)
    found = {k: spec for k, vs in values.items() if (spec := infer(vs)) is not None}
    found[TAGS] = infer(tags, MAX_KNOWN_TAGS) or FieldSpec("list")
    return found


def read_fields(db: Engine, catalog: Catalog | None) -> Fields:
    """Blocking: the catalog's fields and those seen in the newest events and profiles."""
    return merge(catalog, _seen_traits(db), _seen_events(db))


def load_fields(svc: Services) -> Fields:
    """Blocking: `read_fields` for this installation. Views call it through
    `BuilderState.fields` (a `FieldCache`) on a worker thread."""
    return read_fields(svc.db, svc.settings.catalog)


class FieldCache:
    """`load_fields`, at most `seconds` stale; one per app (on `state.BuilderState`)."""

    def __init__(self, seconds: float = CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._value: tuple[float, Fields] | None = None

    def get(self, svc: Services) -> Fields:
        with self._lock:
            if self._value is not None and self._value[0] > time.monotonic():
                return self._value[1]
        found = load_fields(svc)
        with self._lock:
            self._value = (time.monotonic() + self.seconds, found)
        return found
