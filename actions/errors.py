"""What can go wrong when Journeyflow acts on the outside world, as one small family.

The dispatcher decides a row's fate by the class it catches, so each class is a decision:

- `PermanentFailure`: the provider refused this message, or it cannot be built (a template
  error, no phone number). Retrying would fail the same way: the row is `failed`.
- `RetryableFailure`: it certainly did not go out, or going out again is harmless (the provider
  deduplicates by our idempotency key). Retried with backoff; `dead` after the last attempt.
- `UncertainOutcome`: it may have gone out (a timeout after the request left) and the provider
  has no idempotency key. Sending again could message the customer twice, so the row is
  `uncertain` and only a person can decide to retry it.

`SettingsInvalid` and `UnsafeTarget` are raised before anything is sent.
"""

from __future__ import annotations


class ActionsError(Exception):
    """Base of every error raised by `actions`."""


class SettingsInvalid(ActionsError):
    """The settings file or environment is wrong; the message names the key (`sms.twilio.from`)."""


class DeliveryError(ActionsError):
    """One message did not certainly go out; the subclass says what the dispatcher does next."""


class PermanentFailure(DeliveryError):
    """Refused for good: retrying cannot help."""


class MessageInvalid(PermanentFailure):
    """The message cannot be built: a template error, no recipient, an unknown template."""


class UnsafeTarget(PermanentFailure):
    """An outbound URL resolves to an address the guard refuses (loopback, private, metadata...)."""


class RetryableFailure(DeliveryError):
    """Not delivered, or safe to deliver again; `retry_after` is the provider's own wish, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UncertainOutcome(DeliveryError):
    """Maybe delivered, and the provider cannot deduplicate a second attempt."""


class SignatureInvalid(ActionsError):
    """A webhook signature does not verify (wrong secret, altered body, or too old: a replay)."""
