"""The workers' exceptions: one base, so the CLI turns any of them into one clear line."""

from __future__ import annotations


class WorkerError(Exception):
    """Something about running workers that an operator must fix."""


class ConfigInvalid(WorkerError):
    """A worker setting is out of range or names an unsupported backend."""


class LayoutMismatch(WorkerError):
    """This worker's partition count differs from the one the fleet uses. Two counts at once
    would let two workers apply one user's events concurrently, so the worker refuses to run."""
