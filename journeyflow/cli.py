"""The `journeyflow` command. This is an edge: it reads files, prints, and turns the DSL's
errors into `file:line:col` lines and exit codes; the work itself is in `dsl`."""

from __future__ import annotations

import difflib
import json
import sys
import tomllib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from actions.settings import SETTINGS_FILE_ENV
from dsl import Catalog, JourneyError, compile_journey, format_journey, parse, validate
from dsl.parser import normalize
from dsl.validate import FIELD_TYPES, FieldSpec
from engine.durable.backend import make_matcher

from . import config
from .config import CONFIG_ENV
from .options import database_options, open_database, rules_backend_option, timezone_option

CATALOG_FILE = "catalog.toml"
JOURNEY_SUFFIX = ".journey"


def _journey_files(paths: Iterable[str]) -> list[Path]:
    """Files named on the command line, with directories expanded to their `.journey` files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(path.rglob(f"*{JOURNEY_SUFFIX}")))
        elif path.exists():
            found.append(path)
        else:
            raise click.BadParameter(f"{raw}: no such file or directory", param_hint="FILES")
    return found


def load_catalog(path: Path) -> Catalog:
    """Read a catalog TOML file (`templates = [...]`, `coupon_pools = [...]`, `[traits]` and
    `[events.NAME]` tables of fields: `name = "type"` or `name = { type = "...", values = [...] }`)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise click.ClickException(f"{path}: cannot read the catalog: {error}") from error

    def names(key: str) -> frozenset[str] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise click.ClickException(f"{path}: {key} must be a list of strings")
        return frozenset(value)

    events = data.get("events")
    if events is not None and not isinstance(events, dict):
        raise click.ClickException(f"{path}: events must be a table of [events.NAME] tables")
    return Catalog(templates=names("templates"), coupon_pools=names("coupon_pools"),
                   traits=_field_specs(path, "traits", data.get("traits")),
                   events=None if events is None else {
                       str(name): _field_specs(path, f"events.{name}", fields) or {}
                       for name, fields in events.items()})


def _field_specs(path: Path, where: str, table: object) -> dict[str, FieldSpec] | None:
    """A catalog's table of fields, each a type name or a `{ type, values }` table."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise click.ClickException(f"{path}: [{where}] must be a table of fields")
    specs = {}
    for name, raw in table.items():
        kind, values = (raw, []) if isinstance(raw, str) else (
            (raw.get("type"), raw.get("values", [])) if isinstance(raw, dict) else (None, []))
        if kind not in FIELD_TYPES:
            raise click.ClickException(f"{path}: {where}.{name}: the type must be one of {', '.join(FIELD_TYPES)}")
        if not isinstance(values, list) or not all(isinstance(v, str | int | float) for v in values):
            raise click.ClickException(f"{path}: {where}.{name}: values must be a list")
        specs[str(name)] = FieldSpec(str(kind), tuple(str(v) for v in values))
    return specs


def _catalog_for(file: Path, explicit: Catalog | None) -> Catalog | None:
    if explicit is not None:
        return explicit
    beside = file.parent / CATALOG_FILE
    return load_catalog(beside) if beside.is_file() else None


@click.group()
@click.version_option(package_name="journeyflow")
@click.option("--config", "config_path", envvar=CONFIG_ENV, type=click.Path(dir_okay=False, path_type=Path),
              help=f"Settings file (TOML; also ${CONFIG_ENV}; default ./journeyflow.toml if present): the "
                   "commands' options, see docs/settings.md. The command line and environment win over it.")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Journeyflow: lifecycle journeys as readable text, run by a durable engine."""
    found = config.find(config_path)
    if found is not None:
        assert isinstance(ctx.command, click.Group)
        ctx.default_map = config.load(found, ctx.command)


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"Templates and coupon pools that exist (default: {CATALOG_FILE} beside each file).")
def check(files: tuple[str, ...], catalog_path: Path | None) -> None:
    """Check journeys for syntax and meaning; print `file:line:col: message` for each problem."""
    explicit = load_catalog(catalog_path) if catalog_path else None
    paths = _journey_files(files)
    failed = problems = 0
    for path in paths:
        raw = path.read_bytes()
        try:
            journey = parse(raw)
            validate(journey, normalize(raw), _catalog_for(path, explicit))
        except JourneyError as error:
            click.echo(error.render(str(path)), err=True)
            failed += 1
            problems += len(error.diagnostics)
    summary = f"{len(paths)} file(s) checked"
    if failed:
        raise click.ClickException(f"{summary}: {problems} problem(s) in {failed} file(s)")
    click.echo(f"{summary}: no problems")


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file would change.")
@click.option("--diff", is_flag=True, help="With --check, show what would change.")
def fmt(files: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite journeys in canonical form (in place). Ends with a count, so that a run that had
    nothing to change says so rather than printing nothing."""
    changed = broken = 0
    paths = _journey_files(files)
    for path in paths:
        raw = path.read_bytes()
        try:
            text = normalize(raw)
            formatted = format_journey(parse(raw))
        except JourneyError as error:
            click.echo(error.render(str(path)), err=True)
            broken += 1
            continue
        if formatted == text:
            continue
        changed += 1
        if check_only:
            click.echo(f"would reformat {path}")
            if diff:
                click.echo("".join(difflib.unified_diff(text.splitlines(True), formatted.splitlines(True),
                                                        str(path), f"{path} (formatted)")))
        else:
            path.write_text(formatted, encoding="utf-8")
            click.echo(f"reformatted {path}")
    if broken:
        raise click.ClickException(f"{broken} file(s) could not be parsed")
    if check_only and changed:
        raise click.ClickException(f"{changed} file(s) would be reformatted")
    unchanged = len(paths) - changed
    click.echo(f"{len(paths)} file(s): {unchanged} already in canonical form"
               + (f", {changed} reformatted" if changed else ""))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "output", type=click.Choice(["json", "dot"]), default="json", show_default=True)
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def graph(file: Path, output: str, catalog_path: Path | None) -> None:
    """Print the compiled journey graph as JSON, or as DOT for Graphviz."""
    raw = file.read_bytes()
    try:
        journey = parse(raw)
        validate(journey, normalize(raw), _catalog_for(file, load_catalog(catalog_path) if catalog_path else None))
    except JourneyError as error:
        click.echo(error.render(str(file)), err=True)
        sys.exit(1)
    compiled = compile_journey(journey)
    click.echo(compiled.to_json() if output == "json" else compiled.to_dot(), nl=False)
    if output == "json":
        click.echo()


@main.command()
@click.argument("journey_files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--events", "events_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Segment-spec messages, one JSON object a line (track, identify, alias), each with its "
                   "`timestamp` (when it happened) and optionally `receivedAt` (when it arrives).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
              help="Run the clock to this time (UTC unless a zone is given). Default: until no timer is left.")
@click.option("--trace", is_flag=True, help="Also print a line for every transition.")
@click.option("--actions-settings", "actions_path", envvar=SETTINGS_FILE_ENV,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"The actions settings (TOML; also ${SETTINGS_FILE_ENV}) whose [templates.NAME] render template "
                   "sends, as the dispatcher will; without it a template send has no text to show.")
@rules_backend_option
@timezone_option
def simulate(journey_files: tuple[Path, ...], events_file: Path, until: datetime | None, trace: bool,
             actions_path: Path | None, rules_backend: str, default_zone: str) -> None:
    """Run journeys on the real engine against a file of events, with a virtual clock; print one
    JSON line per action (and per transition with --trace), each message built as the dispatcher
    would build it: rendered, with its recipient, or the reason it would fail."""
    import os

    from actions.errors import ActionsError
    from actions.settings import load_settings

    from .simulate import SimulationInputError, read_events
    from .simulate import simulate as run_simulation

    try:
        actions = load_settings(actions_path, os.environ)
    except ActionsError as error:
        raise click.ClickException(str(error)) from None

    sources = []
    for path in journey_files:
        raw = path.read_bytes()
        try:
            journey = parse(raw)
            validate(journey, normalize(raw))
        except JourneyError as error:
            click.echo(error.render(str(path)), err=True)
            sys.exit(1)
        sources.append(normalize(raw))
    try:
        messages = read_events(events_file)
    except SimulationInputError as error:
        click.echo(str(error), err=True)
        sys.exit(1)
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    matcher = make_matcher(rules_backend)
    try:
        lines = run_simulation(sources, messages, until, trace, matcher, actions=actions, default_zone=default_zone)
    finally:
        matcher.close()
    for line in lines:
        click.echo(json.dumps(line, ensure_ascii=False, sort_keys=False, default=str))


@main.command()
@database_options
@click.option("--batch", default=500, show_default=True, help="Events or timers applied per transaction.")
@click.option("--until-idle", is_flag=True, help="Stop when no event is waiting and no timer is due.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds to sleep when idle.")
@rules_backend_option
@timezone_option
def process(database_url: str, batch: int, until_idle: bool, poll: float, rules_backend: str,
            default_zone: str) -> None:
    """Apply accepted events, fire due timers and run due schedule ticks, batch by batch."""
    import time

    from engine.clock import SystemClock
    from engine.runtime import Runtime

    db = open_database(database_url, create=True)
    runtime = Runtime(db, SystemClock(), matcher=make_matcher(rules_backend), default_zone=default_zone)
    events = timers = ticks = 0
    try:
        while True:
            applied, fired, ran = (runtime.process_events(batch), runtime.fire_due_timers(batch),
                                   runtime.run_due_schedules(batch))
            events, timers, ticks = events + applied, timers + fired, ticks + ran
            if applied or fired or ran:
                continue
            if until_idle:  # say what was done: a silent exit reads as "there was nothing here"
                click.echo(f"{events} event(s) applied, {timers} timer(s) fired, {ticks} schedule tick(s) run")
                return
            time.sleep(poll)
            runtime.reload()
    finally:
        runtime.close()


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@database_options
@click.option("--batch", default=1000, show_default=True, help="Members stored per transaction.")
def import_members(file: Path, database_url: str, batch: int) -> None:
    """Import members (CSV with a header row, or JSON Lines) as profiles; see docs/engine.md.

    Every row becomes an identify: the One-ID rules recognise the member when one of their
    identities shows up later. Bad rows are reported with their line and skipped; importing a
    file again stores nothing new. Applying the identifies is `process`'s work (or `serve`'s).
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    from engine.clock import SystemClock
    from engine.runtime import Runtime

    from .importer import Refused, read_members

    db = open_database(database_url, create=True)
    runtime = Runtime(db, SystemClock())
    stored = seen = 0
    refused: list[Refused] = []
    pending: list[Any] = []
    columns = (TextColumn("importing"), BarColumn(), TransferSpeedColumn(), TextColumn("{task.fields[rows]:,} rows"))
    with file.open(encoding="utf-8-sig", newline="") as stream, \
            Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("import", total=file.stat().st_size, rows=0)
        read = [0]

        def counted(lines: Iterable[str]) -> Iterator[str]:
            for line in lines:
                read[0] += len(line.encode())
                yield line

        for item in read_members(file, counted(stream), runtime.clock.now()):
            if isinstance(item, Refused):
                refused.append(item)
                continue
            pending.append(item)
            seen += 1
            if len(pending) >= batch:
                stored += runtime.accept(pending)
                pending = []
                progress.update(task, completed=read[0], rows=seen)
        stored += runtime.accept(pending)
        progress.update(task, completed=file.stat().st_size, rows=seen)
    for bad in refused:
        click.echo(f"{file}:{bad.line}: {bad.problem}", err=True)
    click.echo(f"{seen:,} member(s) read, {stored:,} new; {len(refused):,} row(s) refused")
    if refused:
        sys.exit(1)


from .keys_cli import keys_group  # noqa: E402  (registered last: the commands above come first)
from .serve import serve  # noqa: E402

main.add_command(serve)
main.add_command(keys_group)

from actions.cli import dead_letters, deliveries, dispatch  # noqa: E402  (issue 4: actions)

main.add_command(deliveries)
main.add_command(dispatch)
main.add_command(dead_letters)

from .worker_cli import worker  # noqa: E402  (issue 8: scale-out workers)

main.add_command(worker)
