"""The `journeyflow` CLI: exit codes and output as editors and CI consume them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from journeyflow.cli import main

GOOD = '''journey "Welcome"
  trigger event "signup"

  send sms template "welcome"
'''
UNFORMATTED = 'journey "Welcome"\n    trigger   event "signup"\n\n    wait 168h\n'
BAD = 'journey "Broken"\n  trigger event "signup"\n\n  wait 2\n  send email "x"\n'


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.journey").write_text(GOOD, encoding="utf-8")
    (tmp_path / "ugly.journey").write_text(UNFORMATTED, encoding="utf-8")
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_passes_good_files_and_expands_directories(files: Path) -> None:
    code, out, _ = run("check", str(files))
    assert code == 0
    assert "2 file(s) checked: no problems" in out


def test_check_prints_file_line_col_for_every_problem_and_fails(files: Path) -> None:
    bad = files / "bad.journey"
    bad.write_text(BAD, encoding="utf-8")
    code, _, err = run("check", str(files))
    assert code == 1
    assert f"{bad}:4:8: unexpected '2'" in err
    assert f"{bad}:5:8: unexpected 'email'" in err
    assert "2 problem(s) in 1 file(s)" in err


def test_check_uses_the_catalog_beside_the_file(files: Path) -> None:
    (files / "catalog.toml").write_text('templates = ["other"]\n', encoding="utf-8")
    code, _, err = run("check", str(files / "good.journey"))
    assert code == 1
    assert "good.journey:4:3: unknown template 'welcome'" in err
    (files / "catalog.toml").write_text('templates = ["welcome"]\n', encoding="utf-8")
    assert run("check", str(files / "good.journey"))[0] == 0


def test_a_broken_catalog_is_a_clear_error(files: Path) -> None:
    (files / "catalog.toml").write_text("templates = 3\n", encoding="utf-8")
    code, _, err = run("check", str(files / "good.journey"))
    assert code == 1
    assert "templates must be a list of strings" in err


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run("check", str(tmp_path / "nope.journey"))
    assert code == 2
    assert "no such file or directory" in err


def test_fmt_check_reports_without_writing_then_fmt_rewrites(files: Path) -> None:
    ugly = files / "ugly.journey"
    code, out, _ = run("fmt", "--check", "--diff", str(files))
    assert code == 1
    assert f"would reformat {ugly}" in out
    assert "+  wait 7d" in out
    assert ugly.read_text(encoding="utf-8") == UNFORMATTED

    code, out, _ = run("fmt", str(files))
    assert code == 0
    assert ugly.read_text(encoding="utf-8") == 'journey "Welcome"\n  trigger event "signup"\n\n  wait 7d\n'
    assert out.splitlines()[-1] == "2 file(s): 1 already in canonical form, 1 reformatted"
    # with nothing to do, it still says so: an empty answer reads like a command that did nothing
    assert run("fmt", "--check", str(files))[:2] == (0, "2 file(s): 2 already in canonical form\n")
    assert run("fmt", str(files / "good.journey"))[1] == "1 file(s): 1 already in canonical form\n"


def test_fmt_refuses_unparsable_files_and_leaves_them_alone(files: Path) -> None:
    bad = files / "bad.journey"
    bad.write_text(BAD, encoding="utf-8")
    code, _, err = run("fmt", str(bad))
    assert code == 1
    assert bad.read_text(encoding="utf-8") == BAD
    assert "could not be parsed" in err


def test_graph_json_and_dot(files: Path) -> None:
    code, out, _ = run("graph", str(files / "good.journey"))
    assert code == 0
    data = json.loads(out)
    assert [n["id"] for n in data["nodes"]] == ["send_sms_welcome"]
    code, out, _ = run("graph", "--format", "dot", str(files / "good.journey"))
    assert code == 0
    assert '"send_sms_welcome" -> "__end__";' in out


def test_installed_console_script(files: Path) -> None:
    """The entry point in pyproject.toml, as a user's shell runs it."""
    script = shutil.which("journeyflow", path=str(Path(sys.executable).parent))
    assert script, "journeyflow is not installed in this environment: pip install -e ."
    bad = files / "bad.journey"
    bad.write_text(BAD, encoding="utf-8")
    done = subprocess.run([script, "check", str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{bad}:4:8: ")


def test_process_until_idle_says_what_it_did(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from engine.clock import SystemClock
    from engine.messages import parse_message
    from engine.runtime import Runtime
    from storage import connect, migrate

    url = f"sqlite:///{tmp_path / 'jf.db'}"
    db = connect(url)
    migrate(db)
    now = datetime.now(UTC)
    Runtime(db, SystemClock()).accept([parse_message({"type": "track", "event": "e", "userId": f"u{i}",
                                                      "messageId": f"m{i}"}, now) for i in range(2)])
    db.dispose()
    code, out, _ = run("process", "--database", url, "--until-idle")
    assert (code, out) == (0, "2 event(s) applied, 0 timer(s) fired, 0 schedule tick(s) run\n")
