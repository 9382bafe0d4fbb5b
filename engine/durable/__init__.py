"""durable-rules as a second rules backend (`--rules-backend durable`), guarded and supervised.

`DurableMatcher` (matcher.py) implements `engine.matcher.Matcher`: journeys are translated to
one durable-rules ruleset per version (translate.py), checked against durable-rules' hard
limits (limits.py), and evaluated in a supervised child process (supervisor.py, child.py).
Only child.py imports durable-rules, and only inside the child.
"""

from .errors import DurableActionFailed, DurableChildFailed, DurableError, DurableLimitExceeded
from .matcher import DurableMatcher

__all__ = ["DurableActionFailed", "DurableChildFailed", "DurableError", "DurableLimitExceeded", "DurableMatcher"]
