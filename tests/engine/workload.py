"""A reproducible mix of Segment messages for the example journeys, for tests that compare
two ways of running the same input."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from engine.messages import Message, parse_message


def generate_messages(users: int, count: int, start: datetime, seed: int = 11) -> list[Message]:
    """Identifies with traits the audiences read, then views, carts, purchases, sign-ups,
    bindings and redemptions; timestamps move forward by up to an hour per message."""
    rng = random.Random(seed)
    out = []
    at = start
    for i in range(count):
        at += timedelta(seconds=rng.randint(0, 3600))
        user = f"u{rng.randrange(users)}"
        if rng.random() < 0.15:
            raw: dict[str, Any] = {"type": "identify", "userId": user, "traits": {
                "first_name": f"n{i % 7}", "total_spend": rng.randint(0, 5000), "push_token": "t",
                "signup_at": (start - timedelta(days=rng.randint(0, 30))).isoformat(),
                "tags": ["member"] if rng.random() < 0.5 else []}}
        else:
            name, props = rng.choice([
                ("product_viewed", {"category": rng.choice(["lens", "care_solution"])}),
                ("add_to_cart", {"amount": rng.randint(20, 300)}),
                ("purchase", {"category": rng.choice(["lens", "care_solution"]), "amount": rng.randint(20, 600)}),
                ("purchase", {"category": "care_solution", "amount": rng.randint(20, 600)}),
                ("signup", {"channel": rng.choice(["store", "wechat_mini", "app"])}),
                ("account_bound", {"platform": "wechat", "openid": f"o{user}"}),
                ("coupon_redeemed", {"pool": "CART_5OFF"}),
            ])
            raw = {"type": "track", "event": name, "userId": user, "properties": props}
        raw.update(messageId=f"m{i}", timestamp=at.isoformat())
        out.append(parse_message(raw, at))
    return out
