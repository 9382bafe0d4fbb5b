"""What a Segment `group` call does to a profile.

A group call says a person belongs to a group (a company, a household, a franchise store) and
describes the group with traits. Journeys read it as `user.groups`, the ids of every group the
person was put in, in the order they first were, and `user.group`, the group of the latest call:
its `id` and its traits, merged with what the calls just before said of the same group (a call
about another group starts afresh, as Journeyflow keeps people, not groups):

    audience "store-0571" in user.groups
    branch user.group.plan == "enterprise": ...

Pure: the runtime applies it to the profile it holds, in the transaction that applies the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUPS, GROUP = "groups", "group"


def joined(user: Mapping[str, Any], group_id: str, traits: Mapping[str, Any]) -> dict[str, Any]:
    """The profile traits that change when the person joins (or is said again to be in) a group."""
    groups = user.get(GROUPS)
    members = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    if group_id not in members:
        members.append(group_id)
    previous = user.get(GROUP)
    known = dict(previous) if isinstance(previous, Mapping) and previous.get("id") == group_id else {}
    return {GROUPS: members, GROUP: {**known, **traits, "id": group_id}}
