"""The one exception type for problems with what the user gave (flags, files, data, configs, checkpoints).

Scripts catch `UserError` in their shared main and print it as a single `error: ...` line with a non-zero exit
status (1; 128 + the signal for a run a signal stopped); every other exception is a bug and keeps its traceback. Library callers can catch it like any exception.
This module imports nothing heavy, so light programs (the SQuAD evaluator) report errors the same way.
"""

import sys


class UserError(ValueError):
    """A problem with the user's input; the message names the flag, file, line or value and says what to do.

    It is a ValueError so that code written against the original (which raised ValueError for bad flags and data)
    keeps catching it.
    """


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist; also a FileNotFoundError, which callers may expect."""


class RunInterrupted(UserError):
    """A run stopped by a signal (SIGTERM, SIGINT) after saving its state; the program exits 128 + the signal's
    number, as a shell reports a process a signal ended."""

    def __init__(self, message: str, signal_number: int):
        super().__init__(message)
        self.exit_status = 128 + signal_number


class user_errors_reported:
    """Context manager: a `UserError` raised inside ends the program with one `error: ...` line on stderr and
    exit status 1, without a traceback; any other exception (a bug) propagates with its traceback."""

    def __enter__(self) -> "user_errors_reported":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None and issubclass(exc_type, UserError):
            report_error(str(exc), getattr(exc, "exit_status", 1))
        return False


def report_error(message: str, exit_status: int = 1) -> None:
    """Prints `error: <message>` as the last line on stderr and exits with `exit_status`."""
    sys.stdout.flush()
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    raise SystemExit(exit_status)
