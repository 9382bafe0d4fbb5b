"""The default provider: sends nothing, records what it would have sent.

For demos, for trying a journey end to end before any account exists, and for tests. Each
delivery is logged (INFO, on `journeyflow.deliveries`) as one line, so that `journeyflow serve`'s
output reads as a list of messages, and kept in `sent`, keyed by idempotency key, so a repeat
replaces rather than duplicates: the log provider is idempotent by nature.
"""

from __future__ import annotations

import logging

from .base import Delivery, Receipt

logger = logging.getLogger("journeyflow.deliveries")


def one_line(text: str) -> str:
    """Line breaks written as `\\n`: a multi-line message must not pass for several log lines."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


class LogProvider:
    name = "log"
    idempotent = True

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: dict[str, Delivery] = {}

    async def send(self, delivery: Delivery) -> Receipt:
        self.sent[delivery.key] = delivery
        step = "/".join(filter(None, (delivery.labels.get("journey"), delivery.labels.get("step")))) or delivery.key
        logger.info("%s to %s (%s, logged, not sent): %s", delivery.channel, delivery.to, step,
                    one_line(delivery.content))
        return Receipt(f"log:{delivery.key}")

    async def aclose(self) -> None:
        return None
