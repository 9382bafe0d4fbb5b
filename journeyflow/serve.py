"""`journeyflow serve`: the HTTP API under uvicorn, with the engine in the same process.

On first start (no key in the database) it creates a write key and an admin key and prints
them once, with the URL and a curl line that sends an event, so a new user can try the API in
the first minute. The event is one the examples visibly answer: a person with a phone number
buys something, and `order_confirmation.journey`, which keeps no quiet hours, texts them at
once, whatever the hour. When there is no builder user yet it creates the first one, an admin
named `admin` with a random password, and prints the builder's URL and that password once.
`--examples DIR` publishes the example journeys that are not loaded yet (matched by slug, the
file's name).

HTTPS: `--ssl-certfile`/`--ssl-keyfile` make uvicorn serve TLS itself; behind a TLS proxy,
`--proxy-headers --forwarded-allow-ips PROXY` makes the proxy's X-Forwarded-For and
X-Forwarded-Proto the request's client address (which the login throttle counts) and scheme
(which makes the builder's cookies Secure), and `--secure-cookies` makes them Secure whatever the
scheme (docs/deployment.md). Headers from any other peer are ignored: they are anyone's to forge.

What the engine and the dispatcher do is printed as they do it: the `journeyflow.*` loggers go to
stderr, one line each, so that with the default log provider every message shows up there
(channel, recipient, rendered text) as well as in `journeyflow deliveries`.
"""

from __future__ import annotations

import json
import logging
import shlex
import ssl
import sys
from pathlib import Path

import click
from sqlalchemy import Engine

from actions.settings import SETTINGS_FILE_ENV
from dsl import JourneyError
from engine.clock import Clock, SystemClock
from engine.runtime import Runtime
from storage import journeys as stored
from storage import keys, users

from .options import database_options, open_database, rules_backend_option, shown_database, timezone_option

JOURNEY_SUFFIX = ".journey"
FIRST_ADMIN = "admin"  # the builder user created on first start
FIRST_EVENT_JOURNEY = "order_confirmation"  # the example that answers the printed curl line
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SECURE_COOKIES_ENV = "JOURNEYFLOW_SECURE_COOKIES"
FORWARDED_ALLOW_IPS_ENV = "FORWARDED_ALLOW_IPS"  # uvicorn's own name for it, kept so its docs apply
SSL_KEYFILE_PASSWORD_ENV = "JOURNEYFLOW_SSL_KEYFILE_PASSWORD"
# The curl line's batch: who the person is (a phone number, so an SMS can reach them), then what
# they did. An identify first, because a track alone makes a profile with no phone, whose SMS
# would fail for want of one.
FIRST_EVENTS = [
    {"type": "identify", "userId": "u1", "traits": {"first_name": "Lin", "phone": "+8613800000000"}},
    {"type": "track", "userId": "u1", "event": "purchase",
     "properties": {"order_id": "o-1001", "category": "care_solution", "amount": 58}},
]


def load_examples(runtime: Runtime, directory: Path) -> list[str]:
    """Publish every journey file in `directory` whose slug is not in the database; the slugs."""
    loaded = []
    for path in sorted(directory.glob(f"*{JOURNEY_SUFFIX}")):
        with runtime.db.connect() as conn:
            if stored.get(conn, path.stem) is not None:
                continue
        try:
            runtime.publish(path.read_text(encoding="utf-8"), slug=path.stem)
        except JourneyError as error:
            raise click.ClickException(error.render(str(path))) from None
        loaded.append(path.stem)
    return loaded


def catalog_file(explicit: Path | None, examples: Path | None) -> Path | None:
    """The catalog to serve with: the one named, else the examples' own (`catalog.toml` beside
    them), so `--examples` alone gives the builder the examples' fields and types."""
    from .cli import CATALOG_FILE  # cli imports this module

    if explicit is not None:
        return explicit
    beside = examples / CATALOG_FILE if examples is not None else None
    return beside if beside is not None and beside.is_file() else None


def create_first_admin(db: Engine, clock: Clock) -> str | None:
    """The builder's first user, an admin, when there is no user yet: its password (random,
    shown once by the caller, stored only as an argon2 hash); None when users exist."""
    from builder_ui.passwords import generate_password, hash_password

    with db.begin() as conn:
        if users.count(conn) > 0:
            return None
        password = generate_password()
        users.create_user(conn, FIRST_ADMIN, hash_password(password), True, clock.now())
    return password


def curl_line(url: str, write_key: str) -> str:
    body = json.dumps({"batch": FIRST_EVENTS}, ensure_ascii=True)
    return (f"curl -sS -X POST {url}/v1/batch -u {shlex.quote(write_key + ':')} "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """serve's own handler, told apart from any other so that it is added once per process."""


def show_logs(level: str) -> None:
    """Print the `journeyflow.*` loggers (deliveries, dispatch, engine, alerts) on stderr, one
    line each. Only ours: uvicorn configures its own, and the root logger belongs to whoever
    embeds us. Without this, Python drops INFO records, and the log provider's messages with them."""
    logger = logging.getLogger("journeyflow")
    logger.setLevel(level.upper())
    logger.propagate = False  # a root handler set up by someone else would print each line twice
    if not any(isinstance(handler, _Lines) for handler in logger.handlers):
        handler = _Lines(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
        logger.addHandler(handler)


def check_tls(certfile: Path | None, keyfile: Path | None, password: str | None) -> None:
    """Load the certificate and key once before anything starts, so that a wrong file or
    passphrase is one line naming it rather than uvicorn's traceback after the keys were printed."""
    if certfile is None:
        if keyfile is not None or password is not None:
            raise click.UsageError("--ssl-keyfile and --ssl-keyfile-password need --ssl-certfile")
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password)
    except (OSError, ssl.SSLError) as error:
        key = f" and {keyfile}" if keyfile is not None else ""
        raise click.ClickException(f"cannot serve HTTPS with {certfile}{key}: {error}") from None


def _command_name() -> str:
    """How this program was typed (`.venv/bin/journeyflow`), to print commands that can be pasted."""
    typed = sys.argv[0] if sys.argv else ""
    return typed if Path(typed).name == "journeyflow" else "journeyflow"


def _database_flag(database_url: str) -> str:
    """What another command needs to find this database: nothing for the default (the data
    directory is the working directory), else the URL."""
    ctx = click.get_current_context(silent=True)
    chosen = ctx is not None and any(ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
                                     for name in ("database_url", "data_dir"))
    return f" --database {shlex.quote(database_url)}" if chosen else ""


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@database_options
@click.option("--examples", "examples", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Publish the journeys in this directory that are not loaded yet.")
@click.option("--catalog", "catalog_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Templates, coupon pools, profile fields and event properties (TOML) the builder offers; "
                   "default: catalog.toml beside --examples, when there is one.")
@click.option("--engine/--no-engine", "run_engine", default=True, show_default=True,
              help="Apply events and fire timers in this process (off when `journeyflow process` does it).")
@click.option("--dispatch/--no-dispatch", "run_dispatcher", default=True, show_default=True,
              help="Send outbox rows from this process (off when `journeyflow dispatch` does it).")
@click.option("--actions-settings", "actions_path", envvar=SETTINGS_FILE_ENV,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"Providers' settings and templates' texts (TOML; also ${SETTINGS_FILE_ENV}). Without it every "
                   "message is logged, not sent, and a template send fails for want of its text.")
@click.option("--redis", "redis_url", envvar="JOURNEYFLOW_REDIS_URL",
              help="Redis of `journeyflow worker` processes (also $JOURNEYFLOW_REDIS_URL): they apply events and "
                   "dispatch, not this process; /readyz and /metrics report their queue.")
@click.option("--queue", envvar="JOURNEYFLOW_QUEUE", default="journeyflow", show_default=True,
              help="With --redis: the workers' queue name (their --queue; also $JOURNEYFLOW_QUEUE). Each commit "
                   "of events wakes the jobs of this queue at once.")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="What the engine and the dispatcher print on stderr: at INFO, every message delivered.")
@rules_backend_option
@timezone_option
@click.option("--proxy-headers/--no-proxy-headers", "proxy_headers", default=False, show_default=True,
              help="Take the client's address and scheme from X-Forwarded-For and X-Forwarded-Proto, when the "
                   "request comes from an address of --forwarded-allow-ips (a TLS proxy in front).")
@click.option("--forwarded-allow-ips", "forwarded_allow_ips", envvar=FORWARDED_ALLOW_IPS_ENV, default=None,
              help=f"With --proxy-headers: the proxies' addresses or networks whose headers are believed, "
                   f"comma-separated, '*' for any (uvicorn's option, also ${FORWARDED_ALLOW_IPS_ENV}; default: "
                   "127.0.0.1,::1).")
@click.option("--ssl-certfile", "ssl_certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Serve HTTPS with this certificate (PEM, the chain after it; it may hold the key too).")
@click.option("--ssl-keyfile", "ssl_keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate's private key (PEM), with --ssl-certfile.")
@click.option("--ssl-keyfile-password", "ssl_keyfile_password", envvar=SSL_KEYFILE_PASSWORD_ENV, default=None,
              help=f"The private key's passphrase, if it is encrypted (better as ${SSL_KEYFILE_PASSWORD_ENV}: a "
                   "command line is visible to every user of the machine).")
@click.option("--secure-cookies/--no-secure-cookies", "secure_cookies", envvar=SECURE_COOKIES_ENV, default=False,
              show_default=True,
              help=f"Mark the builder's cookies Secure on every request (also ${SECURE_COOKIES_ENV}): behind a TLS "
                   "proxy whose X-Forwarded-Proto is not trusted. Without it they are Secure over HTTPS only.")
def serve(host: str, port: int, database_url: str, examples: Path | None, run_engine: bool, run_dispatcher: bool,
          actions_path: Path | None, redis_url: str | None, log_level: str, rules_backend: str,
          default_zone: str, queue: str = "journeyflow", catalog_path: Path | None = None, proxy_headers: bool = False,
          forwarded_allow_ips: str | None = None, ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None,
          ssl_keyfile_password: str | None = None, secure_cookies: bool = False) -> None:
    """Serve the HTTP API (and, by default, run the engine and the dispatcher) on one database."""
    import os

    from actions.errors import ActionsError
    from actions.settings import load_settings
    from api.app import create_app
    from api.settings import Settings

    from .cli import load_catalog  # cli imports this module

    try:
        actions = load_settings(actions_path, os.environ)
    except ActionsError as error:
        raise click.ClickException(str(error)) from None

    check_tls(ssl_certfile, ssl_keyfile, ssl_keyfile_password)
    catalog = load_catalog(chosen) if (chosen := catalog_file(catalog_path, examples)) is not None else None
    clock = SystemClock()
    db = open_database(database_url, create=True)
    try:
        if examples is not None:
            loaded = load_examples(Runtime(db, clock), examples)
            if loaded:
                click.echo(f"published {len(loaded)} example journey(s): {', '.join(loaded)}")
        with db.begin() as conn:
            first = keys.count_active(conn) == 0
            if first:
                _, write = keys.create(conn, "write", "first write key", clock.now())
                _, admin = keys.create(conn, "admin", "first admin key", clock.now())
        builder_password = create_first_admin(db, clock)
        with db.connect() as conn:
            answering = stored.get(conn, FIRST_EVENT_JOURNEY)
    finally:
        db.dispose()
    url = f"{'https' if ssl_certfile is not None else 'http'}://{host}:{port}"
    click.echo(f"Journeyflow API on {url} (database {shown_database(database_url)})")
    if redis_url:  # workers do the engine's and the dispatcher's work (docs/deployment.md)
        run_engine = run_dispatcher = False
        click.echo("Events are applied and messages sent by `journeyflow worker` processes on that Redis.")
    if builder_password is not None:
        click.echo(f"Builder: {url}/builder/ (shown this once) user {FIRST_ADMIN}, password {builder_password}")
    if first:
        click.echo("Keys, shown this once (`journeyflow keys` manages them):")
        click.echo(f"  write key: {write}")
        click.echo(f"  admin key: {admin}")
        click.echo("Send an event, from another terminal:")
        click.echo(f"  {curl_line(url, write)}")
        if answering is not None and answering.status == "live":
            how = ("logged, not sent, as no SMS provider is configured" if actions.channel("sms").provider == "log"
                   else f"sent by the {actions.channel('sms').provider} provider")
            where = "here" if run_dispatcher else "by the process that dispatches"
            click.echo(f"The example journey {FIRST_EVENT_JOURNEY} answers it with an SMS ({how}), printed {where}. "
                       "See it with:")
            click.echo(f"  {_command_name()} deliveries{_database_flag(database_url)}")
        elif answering is None:
            click.echo("No journey answers it yet: start with --examples examples/journeys, or publish one in the "
                       "builder.")
    sys.stdout.flush()  # the keys must reach a pipe before the server's logs do
    show_logs(log_level)
    import uvicorn

    app = create_app(Settings(database_url=database_url, clock=clock, run_engine=run_engine,
                              run_dispatcher=run_dispatcher, actions=actions, redis_url=redis_url or None,
                              queue=queue, rules_backend=rules_backend, default_zone=default_zone, catalog=catalog,
                              secure_cookies=secure_cookies))
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=proxy_headers,
                forwarded_allow_ips=forwarded_allow_ips, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                ssl_keyfile_password=ssl_keyfile_password)
