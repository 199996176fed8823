"""Where logged numbers and pictures go: metrics.jsonl, TensorBoard (tensorboardX), PNGs.

Only process 0 writes; the other processes get a writer that does nothing.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time

import jax
import numpy as np

from genlab import viz


def _step_of(row: str) -> int | None:
  try:
    return int(json.loads(row)['step']) if row.endswith('\n') else None
  except (ValueError, KeyError, TypeError):
    return None


@contextlib.contextmanager
def _named_errors(path: str | None):
  """A failed write()'s OSError carries no file name; the run's one-line error should say which
  file it was."""
  try:
    yield
  except OSError as e:
    if e.filename is not None or path is None:
      raise
    raise OSError(e.errno, e.strerror, path) from e


class _EventFile:
  """TensorBoard's event file, written in the caller's thread.

  tensorboardX's SummaryWriter writes from a worker thread fed by a bounded queue: when a write
  fails there (a full disk), the thread dies and the next event blocks the run forever. Written
  here, the OSError reaches the trainer, which stops with its one line.
  """

  def __init__(self, logdir: str):
    # pylint: disable=g-import-not-at-top
    from tensorboardX import event_file_writer, summary  # 0.3 s: only for a run that writes
    from tensorboardX.proto import event_pb2
    os.makedirs(logdir, exist_ok=True)
    self._file = event_file_writer.EventsWriter(os.path.join(logdir, 'events'))
    self._event, self.summary = event_pb2.Event, summary

  def add(self, summary, step: int) -> None:
    with self._named_errors():
      self._file.write_event(self._event(summary=summary, step=int(step), wall_time=time.time()))

  def flush(self) -> None:
    with self._named_errors():
      self._file.flush()

  def _named_errors(self):
    return _named_errors(getattr(self._file, '_file_name', None))

  def close(self) -> None:
    with self._named_errors():
      self._file.close()


class Writer:

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.active = jax.process_index() == 0
    self._tb = None
    if self.active:
      os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
      self._tb = _EventFile(os.path.join(workdir, 'tensorboard'))

  def scalars(self, step: int, split: str, metrics: dict) -> None:
    if not self.active:
      return
    values = {k: float(v) for k, v in metrics.items()}
    for k, v in values.items():
      self._tb.add(self._tb.summary.scalar(f'{split}/{k}', v), step)
    row = {'step': int(step), 'split': split}
    row.update({k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
    path = os.path.join(self.workdir, 'metrics.jsonl')
    with _named_errors(path), open(path, 'a') as f:
      f.write(json.dumps(row) + '\n')

  def forget_after(self, step: int) -> None:
    """Drops metrics.jsonl rows past `step`: a resumed run logs those steps again, identically.

    A row cut short (the disk filled, or the process died, mid-write) is dropped too: it is
    past the last checkpoint, so it is logged again whole.
    """
    path = os.path.join(self.workdir, 'metrics.jsonl')
    if not self.active or not os.path.exists(path):
      return
    with open(path) as f:
      rows = f.readlines()
    kept = [r for r in rows if (s := _step_of(r)) is not None and s <= step]
    if len(kept) != len(rows):
      with open(path + '.tmp', 'w') as f:
        f.writelines(kept)
      os.replace(path + '.tmp', path)

  def images(self, step: int, grids: dict, folder: str = 'samples', stamp: bool = True) -> None:
    """Each grid (H, W, C) in [0, 1] -> <folder>/<name>_<step>.png (<name>.png without
    `stamp`) and the TensorBoard image <folder>/<name>."""
    if not self.active:
      return
    for name, grid in grids.items():
      grid = np.clip(np.asarray(grid, np.float32), 0.0, 1.0)
      file = f'{name}_{step:07d}.png' if stamp else f'{name}.png'
      viz.save_png(os.path.join(self.workdir, folder, file), grid)
      self._tb.add(self._tb.summary.image(f'{folder}/{name}', grid, dataformats='HWC'), step)

  def texts(self, step: int, texts: dict, folder: str = 'samples') -> None:
    """Each text -> <folder>/<name>_<step>.txt and the TensorBoard text <folder>/<name>."""
    if not self.active:
      return
    for name, text in texts.items():
      with open(os.path.join(self.workdir, folder, f'{name}_{step:07d}.txt'), 'w') as f:
        f.write(text)
      # TensorBoard renders text as Markdown: a code block keeps the line breaks.
      self._tb.add(self._tb.summary.text(
          f'{folder}/{name}', '```\n' + text.replace('```', "'''") + '\n```'), step)

  def visuals(self, step: int, items: dict) -> None:
    """A method's `visualize` output: strings are texts, everything else image grids."""
    self.texts(step, {k: v for k, v in items.items() if isinstance(v, str)})
    self.images(step, {k: v for k, v in items.items() if not isinstance(v, str)})

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
