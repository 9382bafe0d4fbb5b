"""Importing members from another system (a CRM export, a loyalty database) as profiles.

Each row becomes a Segment `identify` and goes through the same intake as live traffic, so the
One-ID rules decide: a member whose phone, email or CRM id later shows up online (an app
sign-up with that phone, a messaging-app binding) is recognised as the same person and keeps
the imported traits. Each row's message id is derived from its content, so importing the same
file twice stores nothing new.

Rows come from CSV (a header row; one column per trait) or JSON Lines (one object per line,
values typed as written). CSV has no types, so a cell that reads as a whole number, a decimal
or true/false becomes one, except in identity columns (`phone`, `email`, `crm_id`...), which
stay text: a phone number is not a number. Columns `user_id` and `anonymous_id` are the
member's ids; a row with neither is keyed by its first identity trait.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.messages import IDENTITY_TRAITS, Message, MessageInvalid, parse_message

ID_COLUMNS = {"user_id": "userId", "anonymous_id": "anonymousId"}
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+")


@dataclass(frozen=True)
class Refused:
    line: int
    problem: str


def typed(column: str, cell: str) -> Any:
    """A CSV cell as the value a condition should compare."""
    if column in IDENTITY_TRAITS:
        return cell
    if cell in ("true", "false"):
        return cell == "true"
    if _INTEGER.fullmatch(cell):
        return int(cell)
    if _DECIMAL.fullmatch(cell):
        return float(cell)
    return cell


def csv_rows(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(stream)
    for row in reader:
        yield reader.line_num, {k.strip(): typed(k.strip(), v.strip()) for k, v in row.items()
                                if k and v is not None and v.strip()}


def jsonl_rows(stream: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | Refused]]:
    for number, text in enumerate(stream, start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            yield number, Refused(number, f"not JSON: {error.msg} at column {error.colno}")
            continue
        yield number, row if isinstance(row, dict) else Refused(number, "a line must be a JSON object")


def to_message(row: Mapping[str, Any], received_at: datetime) -> Message:
    """The identify a member row amounts to; `MessageInvalid` names what is wrong."""
    content = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    raw: dict[str, Any] = {"type": "identify", "timestamp": received_at.isoformat(),
                           "messageId": "import:" + hashlib.sha256(content.encode()).hexdigest()[:32],
                           "traits": {k: v for k, v in row.items() if k not in ID_COLUMNS}}
    for column, field in ID_COLUMNS.items():
        if row.get(column) not in (None, ""):
            raw[field] = str(row[column])
    if "userId" not in raw and "anonymousId" not in raw:
        key = next((f"{t}:{row[t]}" for t in IDENTITY_TRAITS if row.get(t) not in (None, "")), None)
        if key is None:
            needed = ", ".join(IDENTITY_TRAITS)
            raise MessageInvalid({"user_id": f"a member needs user_id, anonymous_id or one of {needed}"})
        raw["anonymousId"] = f"import:{key}"
    return parse_message(raw, received_at)


def read_members(path: Path, stream: Iterable[str], received_at: datetime) -> Iterator[Message | Refused]:
    """Messages for the good rows and a `Refused` for each bad one, in file order."""
    rows: Iterable[tuple[int, dict[str, Any] | Refused]]
    rows = jsonl_rows(stream) if path.suffix in (".jsonl", ".ndjson") else csv_rows(stream)
    for line, row in rows:
        if isinstance(row, Refused):
            yield row
            continue
        try:
            yield to_message(row, received_at)
        except MessageInvalid as error:
            yield Refused(line, "; ".join(f"{k}: {v}" for k, v in error.problems.items()))
