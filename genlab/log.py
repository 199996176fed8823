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
# Orbax's background save threads log the error of a failed write with its traceback; the same
# error reaches genlab's main thread, which reports it in one line (a full disk, say).
_REPORTED_AGAIN = (
    'raised an exception',                # orbax futures: _SignalingThread.run() raised ...
    'in background save thread',          # orbax AsyncCheckpointer: Failed to run ... Commit
    'Save Finalize thread',               # orbax CheckpointManager (it re-raises the error)
    'exception was never retrieved',      # asyncio's Future or Task (only Orbax uses asyncio
)                                         # here): the writes still in flight when one failed


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
    return not any(text in message for text in _ROUTINE + _REPORTED_AGAIN)


def _drop_closed_loop_callbacks(previous):
  """sys.unraisablehook without the errors of TensorStore's write callbacks that find Orbax's
  event loop closed: after a failed checkpoint write (a full disk) each write still in flight
  prints one, from a C++ thread, after genlab has reported the failure itself."""
  def hook(unraisable):
    tb = unraisable.exc_traceback
    while tb is not None and tb.tb_next is not None:
      tb = tb.tb_next
    if (unraisable.exc_type is RuntimeError and str(unraisable.exc_value) ==
        'Event loop is closed' and tb is not None and tb.tb_frame.f_code.co_name ==
        '_check_closed'):
      return
    previous(unraisable)
  hook.genlab = True
  return hook


def quiet_libraries() -> None:
  """Drops the libraries' routine warnings, and their logs of errors that genlab reports in
  one line itself (absl routes most libraries' logging through the 'absl' logger)."""
  for name in ('absl', '', 'asyncio'):
    logger = logging.getLogger(name)
    if not any(isinstance(f, _DropRoutine) for f in logger.filters):
      logger.addFilter(_DropRoutine())
  if not getattr(sys.unraisablehook, 'genlab', False):
    sys.unraisablehook = _drop_closed_loop_callbacks(sys.unraisablehook)
