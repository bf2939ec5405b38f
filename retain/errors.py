"""Errors meant for the user: the CLI prints their message, never a stack trace."""


class RetainError(Exception):
    """A problem the user can fix; the message says what and how."""


class DataValidationError(RetainError):
    """Input tables broke the data contract (strict mode)."""
