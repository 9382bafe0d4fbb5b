"""The settings file, `journeyflow.toml`: what the commands' options default to, kept in one
place so that `serve`, `worker`, `process` and the rest of a deployment agree.

    database = "postgresql+psycopg://journeyflow@db/journeyflow"   # for every command with --database
    data_dir = "/var/lib/journeyflow"   # or: where the embedded journeyflow.db lives (relative: to this file)
    rules_backend = "durable"                                       # ... with --rules-backend

    [serve]                                                         # for one command only
    port = 8080

    [worker]
    concurrency = 8

A key is an option's long name with `_` for `-` (`--rules-backend` is `rules_backend`,
`--engine/--no-engine` is `engine = false`). Top-level keys apply to every command that has the
option; a table named after a command applies to that command (a group's table nests its
commands: `[keys.create]`).

Which file: `journeyflow --config FILE`, else `$JOURNEYFLOW_CONFIG`, else `./journeyflow.toml`
when there is one. What wins: the command line, then the option's environment variable, then
this file, then the built-in default. That is Click's own order for a context's `default_map`,
which is what the file becomes.

The file is read strictly: a key no command knows, or a value its option refuses, stops the
command with the file, the key and the reason, before anything runs.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

CONFIG_ENV = "JOURNEYFLOW_CONFIG"
DEFAULT_CONFIG = Path("journeyflow.toml")


class ConfigInvalid(click.ClickException):
    """The settings file cannot be used; the message names the file and the key."""


def find(explicit: Path | None) -> Path | None:
    """The file to read: the one named (by --config or $JOURNEYFLOW_CONFIG), else
    ./journeyflow.toml if it exists, else none."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigInvalid(f"{explicit}: no such settings file")
        return explicit
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load(path: Path, group: click.Group) -> dict[str, Any]:
    """The file as a Click `default_map` for `group`'s commands, checked against their options."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigInvalid(f"{path}: cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigInvalid(f"{path}: not valid TOML: {error}") from None
    return _defaults(path, group, data, shared={}, where="")


def _option_name(param: click.Parameter) -> str | None:
    """The key an option is set by: its longest `--` name with `_` for `-`; None for arguments."""
    if not isinstance(param, click.Option):
        return None
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return max(longs, key=len)[2:].replace("-", "_") if longs else None


def _options(command: click.Command) -> dict[str, click.Option]:
    found: dict[str, click.Option] = {}
    for param in command.params:
        name = _option_name(param)
        if name is not None and isinstance(param, click.Option) and not param.hidden:
            found[name] = param
    return found


def _all_option_names(group: click.Group) -> set[str]:
    names: set[str] = set()
    for command in group.commands.values():
        names |= set(_options(command))
        if isinstance(command, click.Group):
            names |= _all_option_names(command)
    return names


def _checked(path: Path, key: str, option: click.Option, value: Any) -> Any:
    """The value, if the option takes it (converted the way the command line would be).

    A relative file or directory is taken from the settings file's own directory, not from
    wherever the command is run: `data_dir = "data"` in /srv/jf/journeyflow.toml means
    /srv/jf/data for a command typed anywhere."""
    if isinstance(value, Mapping):
        raise ConfigInvalid(f"{path}: {key}: expected a value, not a table")
    if isinstance(option.type, click.Path) and isinstance(value, str) and value and not Path(value).is_absolute():
        value = str(path.absolute().parent / value)
    try:
        option.type_cast_value(click.Context(click.Command("config")), value)
    except click.BadParameter as error:
        raise ConfigInvalid(f"{path}: {key}: {error.message}") from None
    return value


def _defaults(path: Path, group: click.Group, data: Mapping[str, Any], shared: Mapping[str, Any],
              where: str) -> dict[str, Any]:
    """`shared` holds the keys of the tables above, which every command below inherits."""
    local = {k: v for k, v in data.items() if k not in group.commands}
    known = _all_option_names(group)
    for key in local:
        if key not in known:
            raise ConfigInvalid(f"{path}: {where}{key}: no command has an option --{key.replace('_', '-')}")
    shared = {**shared, **local}
    tables = {k: v for k, v in data.items() if k in group.commands}
    out: dict[str, Any] = {}
    for name, command in group.commands.items():
        own = tables.get(name, {})
        if not isinstance(own, Mapping):
            raise ConfigInvalid(f"{path}: {where}{name}: expected a table of {name}'s options")
        if isinstance(command, click.Group):
            nested = _defaults(path, command, own, shared, f"{where}{name}.")
            if nested:
                out[name] = nested
            continue
        options = _options(command)
        for key in own:
            if key not in options:
                raise ConfigInvalid(f"{path}: {where}{name}.{key}: `journeyflow {name}` has no option "
                                    f"--{key.replace('_', '-')}")
        values = {options[k].name: _checked(path, k, options[k], v) for k, v in shared.items() if k in options}
        values |= {options[k].name: _checked(path, f"{where}{name}.{k}", options[k], v) for k, v in own.items()}
        if values:
            out[name] = values
    return out
