"""The fields conditions can name: from the catalog file, and learnt from the events and
profiles actually received (a real SQLite file, fed through the engine), the catalog winning."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from sqlalchemy import Engine

from builder_ui.field_catalog import Field, infer, label_of, read_fields
from dsl.validate import Catalog, FieldSpec
from engine.clock import SystemClock
from engine.messages import parse_message
from engine.runtime import Runtime
from journeyflow.cli import load_catalog
from journeyflow.serve import catalog_file
from storage import connect, migrate

EXAMPLES_CATALOG = Path(__file__).resolve().parents[2] / "examples" / "journeys" / "catalog.toml"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = connect(f"sqlite:///{tmp_path / 'fields.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def receive(db: Engine, *messages: dict[str, object]) -> None:
    """Messages accepted and applied by the engine, as the API would have them."""
    runtime = Runtime(db, SystemClock())
    now = datetime.now(UTC)
    runtime.accept([parse_message({**raw, "messageId": f"m{i}", "timestamp": now.isoformat()}, now)
                    for i, raw in enumerate(messages)])
    while runtime.process_events():
        pass


def test_types_and_known_values_are_learnt_from_what_was_received(db: Engine) -> None:
    receive(
        db,
        *({"type": "track", "userId": f"u{i}", "event": "purchase",
           "properties": {"category": ["lens", "care_solution"][i % 2], "amount": 58 + i, "gift": i % 2 == 0,
                          "paid_at": "2026-03-01T10:00:00Z", "order_id": f"o-{i}"}} for i in range(30)),
        {"type": "identify", "userId": "u1", "traits": {"first_name": "Lin", "total_spend": 480,
                                                        "signup_at": "2025-11-02"}},
    )
    fields = read_fields(db, None)
    purchase = {f.name: f for f in fields.of_event("purchase")}
    assert purchase["category"] == Field("event.category", "text", ("care_solution", "lens"), "category")
    assert purchase["amount"].type == "number"
    assert purchase["gift"].type == "bool"
    assert purchase["paid_at"].type == "date"
    assert purchase["order_id"].values == ()  # 30 distinct values: a free text, not a list to pick from
    assert fields.trait("first_name") == Field("user.first_name", "text", ("Lin",), "first name")
    assert fields.trait("total_spend") is not None and fields.trait("total_spend").type == "number"  # type: ignore[union-attr]
    assert fields.trait("signup_at") is not None and fields.trait("signup_at").type == "date"  # type: ignore[union-attr]
    assert fields.trait("tags") is not None and fields.trait("tags").type == "list"  # type: ignore[union-attr]
    assert fields.of_event("signup") == []


def test_the_catalog_beats_what_was_received(db: Engine) -> None:
    receive(db, {"type": "track", "userId": "u1", "event": "purchase", "properties": {"amount": "58", "store": "s1"}})
    catalog = Catalog(traits={"tier": FieldSpec("text", ("gold", "silver"))},
                      events={"purchase": {"amount": FieldSpec("number")}, "signup": {"source": FieldSpec("text")}})
    fields = read_fields(db, catalog)
    purchase = {f.name: f for f in fields.of_event("purchase")}
    assert purchase["amount"].type == "number"  # the event sent text; the catalog says number
    assert purchase["store"].type == "text"  # not in the catalog: learnt
    assert [f.path for f in fields.of_event("signup")] == ["event.source"]
    assert fields.trait("tier") == Field("user.tier", "text", ("gold", "silver"), "tier")
    assert fields.by_path("user.tier") == fields.trait("tier")
    assert fields.by_path("event.amount", "purchase") == purchase["amount"]
    assert fields.by_path("event.amount") is None


def test_inference_of_one_field() -> None:
    assert infer([1, 2.5, None]) == FieldSpec("number")
    assert infer([1, "a"]) == FieldSpec("text", ("a",))
    assert infer(["2026-01-02", "2026-01-02T03:04:05+08:00"]) == FieldSpec("date")
    assert infer([["vip", "member"], ["vip"]]) == FieldSpec("list", ("member", "vip"))
    assert infer([None, {"a": 1}]) is None
    assert infer(["x" * 41]) == FieldSpec("text")  # too long to offer
    assert infer([str(i) for i in range(21)]).values == ()  # type: ignore[union-attr]
    assert label_of("last_purchase_at") == "last purchase at"
    assert label_of("daysUntilBirthday") == "days until birthday"


def test_the_examples_catalog_lists_the_fields_the_examples_use() -> None:
    catalog = load_catalog(EXAMPLES_CATALOG)
    assert catalog.traits is not None and catalog.events is not None
    assert catalog.traits["tags"].type == "list" and "unsubscribed" in catalog.traits["tags"].values
    assert catalog.traits["last_purchase_at"] == FieldSpec("date")
    assert catalog.events["purchase"]["category"].values == ("lens", "care_solution", "accessory")
    source = EXAMPLES_CATALOG.parent
    traits = {name for p in source.glob("*.journey")
              for name in re.findall(r"\buser\.([A-Za-z_]\w*)", p.read_text(encoding="utf-8"))}
    assert "last_purchase_at" in traits
    for name in traits:
        assert name in catalog.traits, f"user.{name} is missing from [traits]"


def test_a_bad_catalog_is_refused_with_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.toml"
    bad.write_text('[traits]\nbirthday = "birthday"\n', encoding="utf-8")
    with pytest.raises(click.ClickException, match=r"traits\.birthday: the type must be one of"):
        load_catalog(bad)
    bad.write_text('[events.purchase]\namount = { type = "number", values = "many" }\n', encoding="utf-8")
    with pytest.raises(click.ClickException, match=r"events\.purchase\.amount: values must be a list"):
        load_catalog(bad)


def test_serve_takes_the_catalog_named_else_the_one_beside_the_examples(tmp_path: Path) -> None:
    assert catalog_file(None, EXAMPLES_CATALOG.parent) == EXAMPLES_CATALOG
    assert catalog_file(tmp_path / "mine.toml", EXAMPLES_CATALOG.parent) == tmp_path / "mine.toml"
    assert catalog_file(None, tmp_path) is None  # no catalog.toml there
    assert catalog_file(None, None) is None
