"""User-facing error types: the CLI prints their message (which names the file or key and the fix) and exits."""


class BasslError(Exception):
    """An error caused by the user's input, not by a bug; its message says what to change."""


class DataError(BasslError, ValueError):
    """Bad or missing input data: the message names the file (and line) and the fix."""
