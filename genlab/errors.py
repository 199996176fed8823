"""The one exception type for bad input. The CLI prints its message as one line, exits 2."""


class UserError(Exception):
  """Something the user can fix: the message says what is wrong and what to do."""
