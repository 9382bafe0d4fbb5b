"""Actions: what the engine decided, done in the world, once.

The engine writes outbox rows; `actions.dispatcher.Dispatcher` sends them through the providers
chosen in `actions.settings` (SMS, push, webhooks), retrying what may be retried and never
repeating what may already have arrived. `actions.templates` renders message text in a sandbox.
docs/actions.md describes the whole of it.
"""
