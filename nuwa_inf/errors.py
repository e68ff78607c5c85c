"""User-facing errors: anything the user can fix (bad file, bad flag, bad checkpoint).

The CLI turns a `UserError` into one line on stderr and exit code 2; the Python API
lets it propagate as an ordinary exception with the same message.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line (CLI exit code 2)."""

    exit_code = 2
