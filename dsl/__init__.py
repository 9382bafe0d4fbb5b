"""The journey language: parse text to a typed model, validate it, format it, compile it.

Nothing here imports from the rest of Journeyflow; the engine runs what `compile_journey`
returns and never sees text.
"""
