"""The journey language: parse text to a typed model, validate it, format it, compile it.

Nothing here imports from the rest of Journeyflow; the engine runs what `compile_journey`
returns and never sees text.
"""

from .compiler import compile_journey, compile_source
from .errors import Diagnostic, DslError, JourneyError, JourneyInvalid, JourneySyntaxError
from .formatter import format_journey
from .graph import END, CompiledJourney
from .parser import parse
from .validate import Catalog, validate

__all__ = [
    "END",
    "Catalog",
    "CompiledJourney",
    "Diagnostic",
    "DslError",
    "JourneyError",
    "JourneyInvalid",
    "JourneySyntaxError",
    "compile_journey",
    "compile_source",
    "format_journey",
    "parse",
    "validate",
]
