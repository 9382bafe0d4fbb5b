"""The settings file (`journeyflow.toml`): what it sets for which command, what wins over it,
how it refuses mistakes, and `serve` running the rules backend it names."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.durable.supervisor import CHILD_SCRIPT
from journeyflow import config
from journeyflow.cli import main
from storage import connect
from storage.keys import api_keys
from storage.tables import outbox

from ..api.conftest import run_serve
from ..processes import children_running

SETTINGS = '''
rules_backend = "durable"
database = "sqlite:///{db}"

[serve]
port = 8080

[keys.create]
kind = "write"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "journeyflow.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_top_level_keys_reach_every_command_with_the_option_and_tables_one_command(tmp_path: Path) -> None:
    defaults = config.load(write(tmp_path, SETTINGS.format(db=tmp_path / "a.db")), main)
    for command in ("serve", "worker", "process", "simulate"):
        assert defaults[command]["rules_backend"] == "durable", command
    assert defaults["serve"]["port"] == 8080
    assert "port" not in defaults["process"]
    assert defaults["keys"]["create"] == {"database_url": f"sqlite:///{tmp_path / 'a.db'}", "kind": "write"}
    assert defaults["keys"]["list"] == {"database_url": f"sqlite:///{tmp_path / 'a.db'}"}
    assert "check" not in defaults  # it has neither option


@pytest.mark.parametrize(("text", "complaint"), [
    ('rules_backend = "rete"\n', "rules_backend: 'rete' is not one of 'compiled', 'durable'"),
    ("colour = 1\n", "colour: no command has an option --colour"),
    ("[serve]\nrules = 1\n", "serve.rules: `journeyflow serve` has no option --rules"),
    ("[serve]\nport = \"eighty\"\n", "serve.port: 'eighty' is not a valid integer"),
    ("serve = 1\n", "serve: expected a table of serve's options"),
    ("[keys.create]\nshout = true\n", "keys.create.shout: `journeyflow create` has no option --shout"),
    ("rules_backend = \n", "not valid TOML"),
])
def test_mistakes_are_refused_naming_the_file_and_the_key(tmp_path: Path, text: str, complaint: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigInvalid) as raised:
        config.load(path, main)
    assert str(path) in raised.value.message
    assert complaint in raised.value.message


def test_a_bad_file_stops_the_command_before_it_runs(tmp_path: Path) -> None:
    path = write(tmp_path, "colour = 1\n")
    result = CliRunner().invoke(main, ["--config", str(path), "keys", "list", "--database",
                                       f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1
    assert "colour: no command has an option --colour" in result.stderr
    assert not (tmp_path / "x.db").exists()
    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "none.toml"), "keys", "list"])
    assert missing.exit_code == 1
    assert "no such settings file" in missing.stderr


def keys_in(db_file: Path) -> list[str]:
    if not db_file.exists():
        return []
    engine = connect(f"sqlite:///{db_file}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(api_keys.c.name)).scalars())
    finally:
        engine.dispose()


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {name: tmp_path / f"{name}.db" for name in ("file", "env", "flag")}
    path = write(tmp_path, SETTINGS.format(db=files["file"]))
    monkeypatch.delenv("JOURNEYFLOW_DATABASE_URL", raising=False)
    runner = CliRunner()

    def create(name: str, *extra: str, env: dict[str, str] | None = None) -> None:
        result = runner.invoke(main, ["--config", str(path), "keys", "create", "--name", name, *extra], env=env)
        assert result.exit_code == 0, result.output

    create("from the file")
    create("from the environment", env={"JOURNEYFLOW_DATABASE_URL": f"sqlite:///{files['env']}"})
    create("from the flag", "--database", f"sqlite:///{files['flag']}",
           env={"JOURNEYFLOW_DATABASE_URL": f"sqlite:///{files['env']}"})
    assert {name: keys_in(file) for name, file in files.items()} == {
        "file": ["from the file"], "env": ["from the environment"], "flag": ["from the flag"]}


def test_the_file_in_the_working_directory_is_read_and_the_environment_can_name_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOURNEYFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv(config.CONFIG_ENV, raising=False)
    write(tmp_path, SETTINGS.format(db=tmp_path / "here.db"))
    assert CliRunner().invoke(main, ["keys", "create", "--name", "here"]).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "other.toml").write_text(f'database = "sqlite:///{tmp_path / "there.db"}"\n', encoding="utf-8")
    monkeypatch.setenv(config.CONFIG_ENV, str(elsewhere / "other.toml"))
    assert CliRunner().invoke(main, ["keys", "create", "--name", "there", "--kind", "admin"]).exit_code == 0
    assert (keys_in(tmp_path / "here.db"), keys_in(tmp_path / "there.db")) == (["here"], ["there"])


PING = ('journey "Ping"\n  trigger event "ping"\n  entry always\n  exit when user.vip == true\n\n'
        '  @pong send sms "pong"\n')


def test_serve_runs_the_rules_backend_the_settings_file_names(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("durable", reason="the durable extra: pip install -e '.[durable]'")
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    monkeypatch.setenv(config.CONFIG_ENV, str(write(tmp_path, 'rules_backend = "durable"\n')))
    monkeypatch.delenv("JOURNEYFLOW_RULES_BACKEND", raising=False)
    served = run_serve(database_url)
    try:
        admin = {"Authorization": f"Bearer {served.admin_key}"}
        assert httpx.post(f"{served.url}/v1/journeys", json={"source": PING, "slug": "ping"},
                          headers=admin).status_code == 201
        assert httpx.post(f"{served.url}/v1/journeys/ping/publish", headers=admin).status_code == 200
        batch = [{"type": "track", "event": "ping", "userId": f"u{n}", "messageId": f"m{n}"} for n in range(3)]
        assert httpx.post(f"{served.url}/v1/batch", json={"batch": batch},
                          auth=(served.write_key, "")).status_code == 200
        db = connect(database_url)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with db.connect() as conn:
                    if len(conn.execute(select(outbox.c.id)).all()) == 3:
                        break
                time.sleep(0.1)
            else:
                raise AssertionError("the engine did not apply the events:\n" + "".join(served.output))
        finally:
            db.dispose()
        children = children_running(served.process.pid, CHILD_SCRIPT)
        assert children, "no durable-rules child under the server"
    finally:
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=30)
        if served.process.stdout is not None:
            served.process.stdout.close()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children), "the child outlived the server"


DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def test_the_documented_example_loads_and_the_table_names_real_options(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    actions = tmp_path / "actions.toml"  # the option checks that the file it names exists
    actions.write_text("", encoding="utf-8")
    example = example.replace("/etc/journeyflow/actions.toml", str(actions))
    defaults = config.load(write(tmp_path, example), main)
    assert defaults["worker"]["concurrency"] == 8
    assert defaults["serve"]["rules_backend"] == "compiled"
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| `")]
    assert rows
    for row in rows:
        keys = [k.strip(" `") for k in row[1].split(",")]
        for name in (c.strip() for c in row[2].split(",")):
            command = main.commands[name]
            options = config._options(command) if not isinstance(command, click.Group) else {
                k: v for sub in command.commands.values() for k, v in config._options(sub).items()}
            for key in keys:
                assert key in options, f"docs/settings.md: `journeyflow {name}` has no --{key.replace('_', '-')}"
