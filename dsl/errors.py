"""Located diagnostics and the DSL's exceptions.

A `Diagnostic` knows where it is and how to show itself with the offending line and a caret;
`JourneySyntaxError` and `JourneyInvalid` carry one or more of them, so a caller can report
every problem in a file at once. `dsl/` imports nothing from the rest of the project, so the
DSL's errors have their own small base class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    line: int
    column: int
    message: str
    hint: str | None = None
    source_line: str = ""
    width: int = 1

    def render(self, filename: str = "<journey>") -> str:
        """The `file:line:col: message` form editors understand, with the line and a caret."""
        out = [f"{filename}:{self.line}:{self.column}: {self.message}"]
        if self.source_line:
            out.append("    " + self.source_line.rstrip("\n").expandtabs(1))
            out.append("    " + " " * max(self.column - 1, 0) + "^" * max(self.width, 1))
        if self.hint:
            out.append(f"    hint: {self.hint}")
        return "\n".join(out)


class DslError(Exception):
    """Base of every error the DSL raises."""


class JourneyError(DslError):
    """A journey text that cannot be used, with every diagnostic found."""

    kind = "error"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.line, d.column))
        first = self.diagnostics[0]
        more = f" (and {len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(f"{first.line}:{first.column}: {first.message}{more}")

    def render(self, filename: str = "<journey>") -> str:
        return "\n".join(d.render(filename) for d in self.diagnostics)


class JourneySyntaxError(JourneyError):
    """The text does not follow the grammar."""


class JourneyInvalid(JourneyError):
    """The text parses, but means something impossible (unknown names, bad percentages...)."""
