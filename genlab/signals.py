"""Ctrl-C (SIGINT) and SIGTERM: inside a training loop they stop it at the end of the current
step, after a checkpoint; anywhere else they stop the program at once. Either way the CLI
prints one line and exits 128 + the signal number (130, 143), never a traceback.

A second signal while a stop is pending stops at once (the steps since the last checkpoint
are then lost, and the first signal's line says so).
"""
from __future__ import annotations

import contextlib
import signal
import sys
from typing import Iterator, Optional

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state = {'deferring': 0, 'pending': None, 'note': ''}


class Interrupted(BaseException):
  """The program was stopped by a signal; `message` says what was saved. A BaseException, as
  KeyboardInterrupt is, so that no `except Exception` mistakes it for a failure."""

  def __init__(self, signum: int, message: str = ''):
    super().__init__(message)
    self.signum = signum
    self.message = message

  @property
  def name(self) -> str:
    return signal.Signals(self.signum).name

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


def _handle(signum, _frame):
  if _state['deferring'] and _state['pending'] is None:
    _state['pending'] = signum
    print(f'\ngenlab: {signal.Signals(signum).name}: stopping after this step with a checkpoint'
          f'{_state["note"]} (send it again to stop at once, without one).', file=sys.stderr,
          flush=True)
    return
  raise Interrupted(signum)


def install() -> None:
  """Routes SIGINT and SIGTERM here (the CLI calls it first thing)."""
  for sig in _SIGNALS:
    signal.signal(sig, _handle)


@contextlib.contextmanager
def deferred(note: str = '') -> Iterator[None]:
  """Inside, a signal only marks a stop as pending (`pending()`); the loop stops at a point of
  its choosing. `note` is added to the line printed when the signal arrives."""
  installed = signal.getsignal(signal.SIGINT) is _handle
  previous = {} if installed else {sig: signal.signal(sig, _handle) for sig in _SIGNALS}
  _state['deferring'] += 1
  old_note, _state['note'] = _state['note'], note
  try:
    yield
  finally:
    _state['deferring'] -= 1
    _state['note'] = old_note
    if not _state['deferring']:
      _state['pending'] = None  # the loop has stopped for it (or ended anyway)
    for sig, handler in previous.items():
      signal.signal(sig, handler)


def pending() -> Optional[int]:
  """The signal that asked to stop, or None."""
  return _state['pending']


def clear() -> None:
  _state['pending'] = None
