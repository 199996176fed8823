"""What every kind of data shares: the training iterator, batch sizes per process, the rows of
a padded evaluation pass, and the empty batches of the data-free methods.

Every training stream is a random-access sequence indexed by the global step (item s = this
process's rows of global batch s), so an iterator's whole state is one integer and resuming
needs only the step.
"""
from __future__ import annotations

import sys
from typing import Iterator

import grain
import numpy as np

from genlab.errors import UserError

# config.dataset of methods that optimise their own inputs through a fixed network (style
# transfer, DeepDream, class visualisation): no splits; every training batch is {} and the
# one eval batch is {} (the method's eval_step reports its own '_count').
NO_DATA = 'none'


def is_data_free(config) -> bool:
  return config.get('dataset', None) == NO_DATA


def seed64(seed) -> int:
  """config.seed as a numpy seed (numpy seeds must be non-negative)."""
  return int(seed) & 0xFFFFFFFFFFFFFFFF


def local_batch_size(global_batch, process_count: int, what: str = 'config.batch_size') -> int:
  """b = B // process_count; UserError unless B is a positive multiple of process_count."""
  if not isinstance(global_batch, (int, np.integer)) or global_batch <= 0:
    raise UserError(f'{what}={global_batch!r} must be a positive integer: set it to one.')
  if global_batch % process_count:
    raise UserError(f'{what}={global_batch} is not divisible by the {process_count} '
                    f'processes: set it to a multiple of {process_count}.')
  return int(global_batch) // process_count


def check_process(process_index: int, process_count: int) -> None:
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} outside [0, {process_count}).')


def eval_rows(n: int, global_batch: int, local: int,
              process_index: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(idx, real) of this process's rows of each global batch of one ordered pass over n rows.

  Global batch i holds rows [i*B, (i+1)*B); process p takes [p*b, (p+1)*b) of it. `real` is
  True for rows < n; `idx` is the row, or 0 for padding (so it can always index). Every
  process gets the same number of batches.
  """
  for start in range(0, n, global_batch):
    rows = start + process_index * local + np.arange(local)
    real = rows < n
    yield np.where(real, rows, 0), real


class TrainIterator:
  """Infinite iterator of local training batches; its state is the next global step."""

  def __init__(self, dataset: grain.MapDataset):
    self._dataset = dataset
    self._step = 0

  @property
  def dataset(self) -> grain.MapDataset:
    """The underlying step-indexed grain.MapDataset (item s = local batch of step s)."""
    return self._dataset

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    batch = self._dataset[self._step]
    self._step += 1
    return batch

  def get_state(self) -> dict:
    return {'step': self._step}

  def set_state(self, state: dict) -> None:
    step = state.get('step') if isinstance(state, dict) else None
    if not isinstance(step, (int, np.integer)) or step < 0:
      raise UserError(f'Saved data iterator state {state!r} has no valid "step": the checkpoint '
                      'was not written by this genlab; start from a fresh --workdir.')
    self._step = int(step)


def iterator(batches) -> TrainIterator:
  """A TrainIterator over a random-access sequence of batches indexed by step."""
  return TrainIterator(grain.MapDataset.source(batches))


class _NoBatches:
  """Random-access sequence of empty batches: the position still counts steps, so a data-free
  run saves and restores its iterator like any other."""

  def __len__(self) -> int:
    return sys.maxsize

  def __getitem__(self, step: int) -> dict:
    return {}


def no_data_train_iterator() -> TrainIterator:
  return iterator(_NoBatches())


def no_data_eval_batches() -> Iterator[dict]:
  return iter([{}])
