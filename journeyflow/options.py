"""Options shared by several commands, declared once so that their names, environment
variables and help read the same everywhere (and the settings file can name them once)."""

from __future__ import annotations

import click

from engine.durable.backend import DEFAULT_RULES_BACKEND, RULES_BACKEND_ENV, RULES_BACKENDS

rules_backend_option = click.option(
    "--rules-backend", "rules_backend", type=click.Choice(RULES_BACKENDS), envvar=RULES_BACKEND_ENV,
    default=DEFAULT_RULES_BACKEND, show_default=True,
    help=f"What evaluates the journeys' conditions (also ${RULES_BACKEND_ENV}); durable needs the durable extra.")
