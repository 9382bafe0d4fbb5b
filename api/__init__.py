"""Journeyflow's HTTP API: event intake for producers, management for people and scripts.

`api.app.create_app(settings)` builds the Starlette application; `journeyflow serve` runs it
under uvicorn. Routes are grouped by concern in `api.routes`; every error leaves as an RFC
9457 problem+json body (`api.problems`).
"""
