"""The errors that `fx` turns into one clear line and an exit code."""

from __future__ import annotations

from pathlib import Path


class FxError(Exception):
    """An expected failure: printed as one line, no traceback (unless `-l debug`)."""

    exit_code = 1


class UsageError(FxError):
    """Bad input from the user: an option, a file, a plan, a name. Exit code 2."""

    exit_code = 2


class PlanError(UsageError):
    """A plan (or cols/data file) that does not load: names the file, the dotted key and what was expected."""

    def __init__(self, file: str | Path | None, key: str | None, message: str) -> None:
        self.file = str(file) if file is not None else None
        self.key = key
        self.detail = message
        where = ": ".join(part for part in (self.file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class SecurityError(FxError):
    """A refusal for security reasons: bad certificate, traversal in an archive, unauthorized peer."""

    exit_code = 2


# OSErrors that mean a path given by the user is wrong (rather than, say, a full disk): usage errors
PATH_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
