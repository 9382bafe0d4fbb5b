"""`journeyflow deliveries`, `dispatch` and `dead-letters`, run as a user runs them."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, select, update

from journeyflow.cli import main
from storage.tables import outbox
from tests.actions.conftest import Rows, sms


def url(db: Engine) -> str:
    return db.url.render_as_string(hide_password=False)


def invoke(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_dispatch_until_idle_sends_with_the_log_provider_and_deliveries_lists_it(db: Engine, rows: Rows) -> None:
    rows.add("sms", sms("hello"), user_id="u-li")
    rows.add("push", sms("hi"), {"push_token": "tok"}, user_id="u-wang")
    rows.add("sms", sms("capped"), status="suppressed", user_id="u-zhao")

    assert invoke("dispatch", "--database", url(db), "--until-idle") == "sent: 2\n"

    listed = invoke("deliveries", "--database", url(db))
    for expected in ("u-li", "u-wang", "u-zhao", "welcome", "sms_1", "push_2", "sent", "suppressed", "log"):
        assert expected in listed
    only_li = invoke("deliveries", "--database", url(db), "--user", "u-li")
    assert "u-li" in only_li and "u-wang" not in only_li
    suppressed = invoke("deliveries", "--database", url(db), "--status", "suppressed")
    assert "u-zhao" in suppressed and "u-li" not in suppressed
    assert "u-li" not in invoke("deliveries", "--database", url(db), "--journey", "other")


def test_dead_letters_are_listed_and_retried(db: Engine, rows: Rows) -> None:
    dead = rows.add("sms", sms("hello"), user_id="u-dead")
    alive = rows.add("sms", sms("hello"), user_id="u-alive")
    with db.begin() as conn:
        conn.execute(update(outbox).values(status="dead", attempts=8, last_error="gave up after 8 attempts: 503"))

    listed = invoke("dead-letters", "list", "--database", url(db))
    assert "u-dead" in listed and "gave up after 8 attempts" in listed

    assert invoke("dead-letters", "retry", "--database", url(db), str(dead)) == "1 message(s) queued again\n"
    with db.connect() as conn:
        states = dict(conn.execute(select(outbox.c.id, outbox.c.status)).all())
    assert states == {dead: "pending", alive: "dead"}
    assert invoke("dead-letters", "retry", "--database", url(db), "--all") == "1 message(s) queued again\n"


def test_dead_letters_retry_needs_ids_or_all(db: Engine) -> None:
    result = CliRunner().invoke(main, ["dead-letters", "retry", "--database", url(db)])
    assert result.exit_code == 2
    assert "give outbox ids, or --all" in result.output


def test_bad_settings_are_one_clear_line(db: Engine, tmp_path: Path) -> None:
    settings = tmp_path / "actions.toml"
    settings.write_text('[sms]\nprovider = "carrier-pigeon"\n')
    result = CliRunner().invoke(main, ["dispatch", "--database", url(db), "--once", "--settings", str(settings)])
    assert result.exit_code == 1
    assert "sms.provider: 'carrier-pigeon' is not a sms provider (choose from log, twilio, http)" in result.output


def test_what_was_sent_is_kept_and_listed_as_it_went_out(db: Engine, rows: Rows, tmp_path: Path) -> None:
    """The payload says what to render; the row, once sent, says what went out and to whom."""
    settings = tmp_path / "actions.toml"
    settings.write_text('[templates.hello]\ntitle = "Hi {{ user.first_name }}"\n'
                        'text = "Your code: [{{ user.code }}]"\n', encoding="utf-8")
    texted = rows.add("sms", sms("Hello {{ user.first_name }}, order {{ event.order_id }}"),
                      {"phone": "+8613800000001", "first_name": "Li"}, event={"order_id": "o-7"}, user_id="u-li")
    pushed = rows.add("push", {"template": "hello", "text": None, "title": None, "results": {}},
                      {"push_token": "tok-wang", "first_name": "Wang", "code": "W1"}, user_id="u-wang")
    failed = rows.add("sms", sms("nobody to text"), {}, user_id="u-none")

    assert invoke("dispatch", "--database", url(db), "--settings", str(settings), "--until-idle") == \
        "failed: 1, sent: 2\n"
    with db.connect() as conn:
        kept = {r.id: (r.recipient, r.content) for r in conn.execute(select(outbox))}
    assert kept == {texted: ("+8613800000001", "Hello Li, order o-7"),
                    pushed: ("tok-wang", "Hi Wang | Your code: [W1]"), failed: (None, None)}

    listed = invoke("deliveries", "--database", url(db))
    for expected in ("+8613800000001", "Hello Li, order o-7", "tok-wang", "Your code: [W1]", "has no phone"):
        assert expected in listed  # [W1] too: a message's brackets are not taken for markup


def test_in_a_narrow_terminal_each_delivery_is_a_block_with_its_whole_message(db: Engine, rows: Rows) -> None:
    long = "Hello Li, " + "this is a long message that an eighty-column table would squeeze into a sliver. " * 2
    rows.add("sms", sms(long), {"phone": "+8613800000001"}, user_id="u-li")
    invoke("dispatch", "--database", url(db), "--until-idle")
    result = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["deliveries", "--database", url(db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "sent (log)  sms to +8613800000001" in result.output
    assert "u-li, welcome / sms_1" in result.output
    assert " ".join(" ".join(lines).split()).count(long.strip()) == 1  # wrapped, not cut
