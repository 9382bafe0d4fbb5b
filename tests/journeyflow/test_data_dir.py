"""One data directory for every command, and commands that look refusing to create what they
look at: `deliveries` typed in the wrong directory must say so, not answer from an empty
database it has just made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from journeyflow import config
from journeyflow.cli import main
from journeyflow.options import DATA_DIR_ENV, DATABASE_URL_ENV

LOOKING = [["deliveries"], ["dead-letters", "list"], ["dead-letters", "retry", "--all"], ["keys", "list"],
           ["keys", "revoke", "1"]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No database, data directory or settings file from the machine running the tests; the
    working directory an empty one of the test's own."""
    for name in (DATABASE_URL_ENV, DATA_DIR_ENV, config.CONFIG_ENV):
        monkeypatch.delenv(name, raising=False)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env={"COLUMNS": "250", **(env or {})}).invoke(main, list(args))


def created_key(*where: str, env: dict[str, str] | None = None) -> str:
    result = run("keys", "create", "--kind", "write", "--name", "shop", *where, env=env)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", LOOKING, ids=" ".join)
def test_a_command_that_looks_creates_nothing_and_says_where_it_looked(command: list[str],
                                                                      clean_environment: Path) -> None:
    result = run(*command)
    assert result.exit_code == 1
    wanted = clean_environment / "journeyflow.db"
    assert f"no database at {wanted}" in result.output
    assert "the working directory, the default data directory" in result.output
    assert "--data-dir DIR" in result.output and "--database URL" in result.output
    assert list(clean_environment.iterdir()) == []


def test_it_names_how_the_database_was_chosen(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    by_flag = run("deliveries", "--data-dir", str(missing))
    assert f"no database at {missing / 'journeyflow.db'} (journeyflow.db in the data directory given by " \
           "--data-dir)" in by_flag.output
    by_env = run("keys", "list", env={DATA_DIR_ENV: str(missing)})
    assert f"given by ${DATA_DIR_ENV}" in by_env.output
    by_url = run("deliveries", env={DATABASE_URL_ENV: f"sqlite:///{tmp_path / 'gone.db'}"})
    assert f"no database at {tmp_path / 'gone.db'} (given by ${DATABASE_URL_ENV})" in by_url.output
    assert not missing.exists() and not (tmp_path / "gone.db").exists()


def test_a_database_without_journeyflow_tables_is_refused_and_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()  # an empty SQLite file: someone else's, or a stray one
    result = run("deliveries", "--database", f"sqlite:///{other}")
    assert result.exit_code == 1
    assert f"{other} (given by --database) holds no Journeyflow data" in result.output
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_commands_that_start_work_create_it_in_the_data_directory_and_the_others_find_it(
        tmp_path: Path, clean_environment: Path) -> None:
    data = tmp_path / "var" / "journeyflow"  # not there yet: creating the database creates it
    created_key("--data-dir", str(data))
    assert (data / "journeyflow.db").is_file()
    assert list(clean_environment.iterdir()) == []
    assert "\tshop\t" in run("keys", "list", "--data-dir", str(data)).output
    assert "\tshop\t" in run("keys", "list", env={DATA_DIR_ENV: str(data)}).output
    assert run("deliveries", "--data-dir", str(data)).exit_code == 0


def test_the_settings_file_names_the_data_directory_relative_to_itself(tmp_path: Path) -> None:
    deployment = tmp_path / "srv"
    deployment.mkdir()
    settings = deployment / "journeyflow.toml"
    settings.write_text('data_dir = "data"\n', encoding="utf-8")
    created_key(env={config.CONFIG_ENV: str(settings)})
    assert (deployment / "data" / "journeyflow.db").is_file()  # not ./data, wherever that is
    assert "\tshop\t" in run("--config", str(settings), "keys", "list").output


def test_the_nearer_setting_wins_between_the_url_and_the_directory(tmp_path: Path) -> None:
    by_url, by_dir = tmp_path / "url.db", tmp_path / "dir"
    settings = tmp_path / "journeyflow.toml"
    settings.write_text(f'database = "sqlite:///{by_url}"\n', encoding="utf-8")
    # a directory on the command line beats a URL in the file...
    created_key("--data-dir", str(by_dir), env={config.CONFIG_ENV: str(settings)})
    assert (by_dir / "journeyflow.db").is_file() and not by_url.exists()
    # ...a URL in the environment beats a directory in the file...
    settings.write_text(f'data_dir = "{by_dir}"\n', encoding="utf-8")
    created_key(env={config.CONFIG_ENV: str(settings), DATABASE_URL_ENV: f"sqlite:///{by_url}"})
    assert by_url.is_file()
    # ...and at the same level the URL wins.
    other = tmp_path / "other.db"
    created_key("--data-dir", str(by_dir), "--database", f"sqlite:///{other}")
    assert other.is_file()
