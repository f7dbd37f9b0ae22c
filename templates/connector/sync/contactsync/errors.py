"""The errors a sync run ends with; each carries the exit code the command returns."""

from __future__ import annotations

from . import EXIT_FAILURE, EXIT_INVALID_INPUT, EXIT_LOCKED


class SyncError(Exception):
    """A run that cannot go on: what failed, what to do next, and the exit code."""

    def __init__(self, message: str, fix: str = "", exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.exit_code = exit_code


class InvalidInput(SyncError):
    """A setting, option or project file the user must correct (exit code 2)."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message, fix, EXIT_INVALID_INPUT)


class RunLocked(SyncError):
    """Another run holds the state's lock (exit code 3); a scheduler can try again later."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message, fix, EXIT_LOCKED)
