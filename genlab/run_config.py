"""The workdir's config.json: the config that made its checkpoints, checked on every use.

A run writes config.json with its first checkpoint, not when it starts, so that a run refused
or diverged before it saved anything leaves the file describing the checkpoints that are
there. A saved config that differs in anything that changes the train state's shapes stops the
run (its checkpoints could not be restored); other differences are reported, and when the run
saves its first checkpoint under the new config the old file is kept beside the new one
(config.<time>.json).
"""
from __future__ import annotations

import json
import os
import time

import jax
import ml_collections

from genlab import files
from genlab import log
from genlab.errors import UserError


def _flatten(d, prefix=''):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def to_json_dict(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def _state_shapes(method) -> list:
  """[(path, shape, dtype)] of the train state; static fields (the module, tx) do not count."""
  shapes = jax.eval_shape(method.init, jax.random.key(0))
  return [(jax.tree_util.keystr(path), s.shape, str(s.dtype))
          for path, s in jax.tree_util.tree_leaves_with_path(shapes)]


def _differences(config, workdir):
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None, {}
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f'{path} is unreadable ({e}); fix or remove it, or use a new --workdir.')
  new, old = _flatten(to_json_dict(config)), _flatten(saved)
  diffs = {k: (old.get(k, '<absent>'), new.get(k, '<absent>'))
           for k in sorted(set(new) | set(old)) if new.get(k) != old.get(k)}
  return saved, diffs


def check_compatible(config, workdir: str, method, *, make_method) -> dict:
  """Raises UserError if workdir/config.json gives a state of other shapes than `config`.

  Returns the differences {key: (saved, new)} (empty when none or no saved config).
  """
  saved, diffs = _differences(config, workdir)
  if not diffs:
    return diffs
  changed = ', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in diffs.items())
  try:
    saved_method = make_method(ml_collections.ConfigDict(saved))
    same = _state_shapes(saved_method) == _state_shapes(method)
  except Exception:  # pylint: disable=broad-except
    same = False
  if not same:
    raise UserError(
        f'{workdir} holds a run whose config changes the model\'s shapes ({changed}). '
        'Use a new --workdir, or revert these config values to resume it.')
  log.info(f'the config differs from {workdir}/config.json (shapes unchanged): {changed}')
  return diffs


def save(config, workdir: str, diffs: dict) -> None:
  """Writes config.json (keeping an older, different one beside it), on process 0."""
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, 'config.json')
  if diffs and os.path.exists(path):
    os.replace(path, os.path.join(workdir, f'config.{time.strftime("%Y%m%d-%H%M%S")}.json'))
  if diffs or not os.path.exists(path):
    files.write_json(path, to_json_dict(config))
