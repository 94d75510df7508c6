"""Errors the user can act on: each message says what is wrong and, where it helps, how to fix it."""


class RagError(Exception):
    """Base for every error the CLI and services report as a plain message, never a traceback."""


class ReadError(RagError):
    """A source file could not be read or parsed; the message names the file (and line)."""


class BadIndexError(RagError):
    """The index is missing, corrupt, or was built with other settings."""


class QuestionError(RagError, ValueError):
    """A question that cannot be asked (empty, too long, not text)."""
