"""The one exception type for bad input. The CLI prints its message as one line, exits 2."""


class UserError(Exception):
  """Something the user can fix: the message says what is wrong and what to do."""


def one_of(value, allowed, key: str):
  """Returns `value` if it is in `allowed`, else a UserError naming config.<key> and the options."""
  if value not in allowed:
    raise UserError(f'config.{key}={value!r} is not known: use one of {list(allowed)}.')
  return value
