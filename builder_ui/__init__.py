"""The visual builder: marketers draw journeys in the browser.

Server-rendered (Starlette and Jinja2, htmx 4 for partial updates, a few lines of plain
JavaScript for drag and drop), served by the same app as the API under `/builder`. The DSL
text stays the source of truth: the canvas is drawn from it, and every canvas edit is a change
to the parsed model (`edits`) formatted back to text. See docs/builder.md.
"""

from .app import routes

__all__ = ["routes"]
