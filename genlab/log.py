"""What a run tells its user on stderr: `genlab: ...` lines for routine events (resuming,
preparing a data set, where results went) and `genlab: warning: ...` only for what the user
should act on. Libraries' own INFO logs (Orbax, TFDS) stay hidden unless --verbosity is given.

In a multi-process run only process 0 prints routine events; every process prints warnings.
"""
from __future__ import annotations

import logging
import sys

# Library messages that are routine here, so that real warnings are not drowned by them.
_ROUTINE = (
    'OpenCV is not installed',            # TFDS decodes PNGs with PIL: fine for these sizes
    'has no dataset_info.json',           # TFDS, while an offline builder prepares itself
    'read_only=True, setting',            # Orbax, for genlab's read-only checkpoint readers
    'Given directory is read only',
)


def _process_index() -> int:
  import jax  # pylint: disable=g-import-not-at-top  (jax is slow to import; the CLI is not)
  return jax.process_index()


def info(message: str) -> None:
  if _process_index() == 0:
    print(f'genlab: {message}', file=sys.stderr, flush=True)


def warning(message: str) -> None:
  print(f'genlab: warning: {message}', file=sys.stderr, flush=True)


class _DropRoutine(logging.Filter):

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    return not any(text in message for text in _ROUTINE)


def quiet_libraries() -> None:
  """Drops the libraries' routine warnings (absl routes every library's logging through the
  'absl' logger)."""
  for name in ('absl', ''):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropRoutine) for f in logger.filters):
      logger.addFilter(_DropRoutine())
