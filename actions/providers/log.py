"""The default provider: sends nothing, records what it would have sent.

For demos, for trying a journey end to end before any account exists, and for tests. Each
delivery is logged (INFO, on `journeyflow.deliveries`) and kept in `sent`, keyed by idempotency
key, so a repeat replaces rather than duplicates: the log provider is idempotent by nature.
"""

from __future__ import annotations

import logging

from .base import Delivery, Receipt

logger = logging.getLogger("journeyflow.deliveries")


class LogProvider:
    name = "log"
    idempotent = True

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: dict[str, Delivery] = {}

    async def send(self, delivery: Delivery) -> Receipt:
        self.sent[delivery.key] = delivery
        what = delivery.body if delivery.channel == "webhook" else delivery.text
        logger.info("%s to %s (%s): %s", delivery.channel, delivery.to, delivery.key, what)
        return Receipt(f"log:{delivery.key}")

    async def aclose(self) -> None:
        return None
