"""Errors the user can act on: each message says what is wrong and, where it helps, how to fix it."""


class RagError(Exception):
    """Base for every error the CLI and services report as a plain message, never a traceback."""


class ReadError(RagError):
    """A source file could not be read or parsed; the message names the file (and line)."""


class BadIndexError(RagError):
    """The index is missing, corrupt, or was built with other settings."""


class QuestionError(RagError, ValueError):
    """A question that cannot be asked (empty, too long, not text)."""


class DiskFullError(BadIndexError):
    """No space left while writing a generation; the live index is unchanged."""


class UsageError(RagError):
    """A command-line value out of range or a combination of options that cannot work."""


class CorruptIndexError(BadIndexError):
    """Index files that are damaged or disagree with each other; `reason` names the fault alone."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
