"""The engine: per-user journey state machines (pure core) and the runtime that drives them."""
