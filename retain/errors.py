"""Errors meant for the user: the CLI prints their message, never a stack trace."""


class RetainError(Exception):
    """A problem the user can fix; the message says what and how."""


class DataValidationError(RetainError):
    """Input tables broke the data contract (strict mode). ``problems``: each problem in words
    (table, column, rows, examples), when the checks listed them."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])
