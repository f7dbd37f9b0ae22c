"""The one error type a user can cause, and the exit codes of the command line."""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2
EXIT_VALIDATION_PROBLEMS = 3
EXIT_DRIFT = 4


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where it is, what was found, the rule and the fix."""

    location: str
    message: str
    fix: str = ""

    def render(self, lang: str = "en") -> str:
        """Format the problem as one or two lines for a terminal."""
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.fix:
            label = "الحل" if lang == "ar" else "fix"
            text += f"\n    {label}: {self.fix}"
        return text


@dataclass
class RabtError(Exception):
    """Base error: a failure the user can act on, with every problem found at once."""

    summary: str
    problems: list[Problem] = field(default_factory=list)
    exit_code: int = EXIT_FAILURE

    def __post_init__(self) -> None:
        super().__init__(self.summary)

    def render(self, lang: str = "en") -> str:
        """Format the summary and every problem for a terminal."""
        lines = [self.summary]
        lines.extend(f"  - {problem.render(lang)}" for problem in self.problems)
        return "\n".join(lines)


class InputError(RabtError):
    """Invalid answers, presets, options or output folders (exit code 2)."""

    def __init__(self, summary: str, problems: list[Problem] | None = None) -> None:
        super().__init__(summary, problems or [], EXIT_INVALID_INPUT)


class ValidationFailed(RabtError):
    """A generated project has problems (exit code 3)."""

    def __init__(self, summary: str, problems: list[Problem] | None = None) -> None:
        super().__init__(summary, problems or [], EXIT_VALIDATION_PROBLEMS)
