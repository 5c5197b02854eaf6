"""Errors in what a user gave (files, data, options), as opposed to bugs.

The command lines print an `InputError` as one line on stderr and exit with
status 1; any other exception is a bug and keeps its traceback. The concrete
classes are also the built-in errors callers already catch (ValueError,
FileNotFoundError).
"""


class InputError(Exception):
  """Something the user gave is wrong; the message says what and what to do."""


class InvalidInput(InputError, ValueError):
  """A file, value or option that cannot be used as it is."""


class MissingInput(InputError, FileNotFoundError):
  """A file or folder that was named but is not there."""
