"""Importing legacy members: each row a profile, recognised when one of its identities shows up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from engine.clock import VirtualClock
from engine.messages import parse_message
from engine.runtime import Runtime
from journeyflow.cli import main
from journeyflow.importer import typed
from storage import connect
from storage.tables import identities, profiles

MEMBERS = """crm_id,phone,first_name,total_spend,vip,note
C-1,+8613800000001,Li,1200,true,0123
C-2,13800000002,Wang,88.5,false,
,,,,,
"""


def test_csv_cells_are_typed_but_identities_stay_text() -> None:
    assert [typed("total_spend", "1200"), typed("rate", "88.5"), typed("vip", "true")] == [1200, 88.5, True]
    as_text = [typed("phone", "13800000002"), typed("note", "0123"), typed("crm_id", "42")]
    assert as_text == ["13800000002", "0123", "42"]


def test_imported_members_are_recognised_when_they_show_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    members = tmp_path / "members.csv"
    members.write_text(MEMBERS, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["import", str(members), "--database", url])
    assert result.exit_code == 1, result.output  # the empty row is refused, the others kept
    assert "members.csv:4: user_id: a member needs user_id" in result.output
    assert "2 member(s) read, 2 new; 1 row(s) refused" in result.output
    again = runner.invoke(main, ["import", str(members), "--database", url])
    assert "2 member(s) read, 0 new" in again.output  # a second import stores nothing

    db = connect(url)
    later = datetime.now(UTC) + timedelta(minutes=1)  # the member signs up in the app after the import
    runtime = Runtime(db, VirtualClock(later))
    runtime.accept([parse_message({"type": "identify", "userId": "app-7", "messageId": "signup-1",
                                   "traits": {"phone": "+8613800000001", "first_name": "Xiaoli"}}, later)])
    runtime.process_events()
    with db.connect() as conn:
        owners = {(r.kind, r.value): r.profile_id for r in conn.execute(select(identities))}
        live = [dict(r.traits) for r in conn.execute(select(profiles.c.traits).where(profiles.c.merged_into.is_(None)))]
    assert owners[("user_id", "app-7")] == owners[("crm_id", "C-1")] == owners[("phone", "+8613800000001")]
    assert len(live) == 2
    li = next(t for t in live if t.get("crm_id") == "C-1")
    assert (li["first_name"], li["total_spend"], li["vip"]) == ("Xiaoli", 1200, True)  # the newer name wins
    db.dispose()
