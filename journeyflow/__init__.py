"""Journeyflow: the application layer (CLI, settings, wiring) over `dsl`, `engine` and friends."""
