"""What the durable-rules backend can refuse or fail with, as one family.

`DurableError` is the family; each subclass also derives from the builtin its callers already
expect (a journey the backend cannot take is a bad value; a failed evaluation is a runtime
fault), so a caller that does not know this backend still handles them sensibly.
"""

from __future__ import annotations


class DurableError(Exception):
    """Anything the durable-rules backend refuses or fails with."""


class DurableLimitExceeded(DurableError, ValueError):
    """A journey this backend cannot evaluate safely: it crosses one of durable-rules' hard
    limits. Raised when journeys are loaded, before any of them replaces the live set."""


class DurableActionFailed(DurableError, RuntimeError):
    """A durable-rules action raised. durable-rules swallows such exceptions into the session
    state; the backend reads them back and raises this instead of deciding on half a result."""

    def __init__(self, message: str, ruleset: str = "") -> None:
        super().__init__(message)
        self.ruleset = ruleset


class DurableChildFailed(DurableError, RuntimeError):
    """The child process hosting durable-rules died (or hung) twice on one evaluation: the
    first failure is retried on a fresh child, a second one is not a fluke."""
