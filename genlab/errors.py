"""The one exception type for bad input. The CLI prints its message as one line, exits 2."""
import numpy as np


class UserError(Exception):
  """Something the user can fix: the message says what is wrong and what to do."""


def one_of(value, allowed, key: str):
  """Returns `value` if it is in `allowed`, else a UserError naming config.<key> and the options."""
  if value not in allowed:
    raise UserError(f'config.{key}={value!r} is not known: use one of {list(allowed)}.')
  return value


def int_at_least(value, lowest: int, key: str) -> int:
  """`value` as an int, or a UserError naming config.<key> unless it is an integer >= lowest."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
    raise UserError(f'config.{key}={value!r}: give an integer >= {lowest}.')
  return int(value)
