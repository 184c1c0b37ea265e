"""The one exception type for problems with what the user gave (flags, files, data, configs, checkpoints).

Scripts catch `UserError` in their shared main and print it as a single `error: ...` line with a non-zero exit
status; every other exception is a bug and keeps its traceback. Library callers can catch it like any exception.
"""


class UserError(ValueError):
    """A problem with the user's input; the message names the flag, file, line or value and says what to do.

    It is a ValueError so that code written against the original (which raised ValueError for bad flags and data)
    keeps catching it.
    """
