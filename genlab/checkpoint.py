"""Orbax checkpoints of (train state, data iterator position), with fallback past bad steps.

Orbax on local disk treats a final-named step directory as valid even when its commit marker
is missing, and a truncated file only shows up when it is read. So `restore_latest` checks the
marker and the restored shapes, tries the newest step, and on failure tries the next older
one. A training run (which holds the workdir's lock) then moves the unusable steps aside, to
`checkpoints_corrupt/`, never deleted, so that it can save those steps again; a read-only
user (--mode=eval or sample, the metric classifier) leaves them in place and only skips them,
so it never disturbs a run that is training.
"""
from __future__ import annotations

import os
import shutil
import time
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from genlab import log
from genlab.errors import UserError

_COMMIT_MARKER = 'commit_success.txt'


class Checkpointer:
  """Saves and restores `{'state': pytree, 'data': json}` under `workdir/checkpoints`."""

  def __init__(self, workdir: str, *, max_to_keep: int = 3, use_async: bool = True,
               read_only: bool = False):
    workdir = epath.Path(os.path.abspath(workdir))  # Orbax needs absolute paths.
    self.directory = workdir / 'checkpoints'
    self.quarantine = workdir / 'checkpoints_corrupt'
    self.read_only = read_only
    self._manager = None
    if read_only and not self.directory.is_dir():
      return  # nothing to read, and nothing may be created
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
            # The writer holds the workdir's lock, so leftovers of a killed save are its own.
            cleanup_tmp_directories=not read_only, enable_async_checkpointing=use_async),
        item_names=('state', 'data'))

  def save(self, step: int, state: Any, data_state: dict, *, force: bool = False) -> None:
    assert not self.read_only
    if step in self._manager.all_steps():
      return
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data=ocp.args.JsonSave(data_state)),
        force=force)

  def wait(self) -> None:
    if self._manager is not None:
      self._manager.wait_until_finished()

  def close(self) -> None:
    if self._manager is not None:
      self._manager.close()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps()) if self._manager is not None else []

  def restore_latest(self, abstract_state: Any) -> Optional[tuple[Any, dict, int]]:
    """Returns (state, data_state, step) from the newest good step, or None if there is none.

    `abstract_state` is a pytree of jax.ShapeDtypeStruct (with shardings) to restore into.
    Raises UserError when steps exist but none can be read (they are left in place).
    """
    steps = self.all_steps()
    failures = []
    for step in reversed(steps):
      try:
        if not (self.directory / str(step) / _COMMIT_MARKER).exists():
          raise ValueError(f'missing {_COMMIT_MARKER} (the save was interrupted)')
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                          data=ocp.args.JsonRestore()))
        _check_shapes(restored.state, abstract_state)
        if failures and not self.read_only:
          self._set_aside([s for s, _ in failures])
        return restored.state, restored.data, step
      except Exception as e:  # pylint: disable=broad-except
        reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        log.warning(f'checkpoint step {step} in {self.directory} is unusable ({reason}); '
                    'trying an older one.')
        failures.append((step, reason))
    if failures:
      step, reason = failures[0]
      raise UserError(
          f'No usable checkpoint in {self.directory}: newest step {step} failed with: {reason}. '
          'Nothing was changed; restore the files or start in a new --workdir.')
    return None

  def _set_aside(self, steps: list[int]) -> None:
    """Moves unusable steps out of Orbax's sight so that the run can save those steps again."""
    if jax.process_index() == 0:
      self.quarantine.mkdir(parents=True, exist_ok=True)
      for step in steps:
        target = self.quarantine / f'{step}-{time.strftime("%Y%m%d-%H%M%S")}'
        shutil.move(os.fspath(self.directory / str(step)), os.fspath(target))
        log.warning(f'moved unusable checkpoint step {step} to {target}.')
    multihost_utils.sync_global_devices('genlab_checkpoint_set_aside')
    self._manager.reload()


def _check_shapes(restored: Any, abstract: Any) -> None:
  """ValueError unless every restored array has the shape the config's model has (a step
  directory copied from another run may restore without complaint otherwise)."""
  if len(jax.tree.leaves(restored)) != len(jax.tree.leaves(abstract)):
    raise ValueError('it holds another set of arrays than the config\'s model (written by '
                     'another config)')
  for path, (got, want) in zip(
      (jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(abstract)),
      zip(jax.tree.leaves(restored), jax.tree.leaves(abstract))):
    if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
      raise ValueError(f'{path} has shape {tuple(got.shape)} {got.dtype}, the config\'s model '
                       f'{tuple(want.shape)} {want.dtype} (written by another config)')
