"""What a sweep is: trials as config overrides, built with grids, zips and random search.

A config file may define, beside `get_config`,

  def get_sweep(h):
    return h.product([h.sweep('optimizer.learning_rate', [1e-3, 3e-4]),
                      h.sweep('model.latent_dim', [2, 16, 50])])

and `SWEEP_METRIC = 'test/nll'` (with `SWEEP_GOAL = 'min'` or `'max'`) to say how the report
ranks trials. A trial is a flat dict {dotted config key: value}; `h` only builds lists of them,
so a sweep can also be written as a plain list. `--sweep_grid KEY=V1,V2` on the command line
gives the same overrides (several flags make a product) in place of `get_sweep`.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import itertools
import math
import re
from typing import Any, Iterable, Sequence

import ml_collections
import numpy as np

from genlab.errors import UserError

Overrides = dict  # {dotted config key: value}


# -- the helpers a config's get_sweep(h) receives ---------------------------------------------
@dataclasses.dataclass(frozen=True)
class Distribution:
  """One hyperparameter's distribution for random search: kind in uniform | loguniform |
  randint (low <= x <= high) | choice (`values`)."""
  kind: str
  low: float = 0.0
  high: float = 1.0
  values: tuple = ()

  def draw(self, rng: np.random.Generator):
    if self.kind == 'uniform':
      return float(rng.uniform(self.low, self.high))
    if self.kind == 'loguniform':
      return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
    if self.kind == 'randint':
      return int(rng.integers(self.low, self.high, endpoint=True))
    return self.values[int(rng.integers(len(self.values)))]


class Hyper:
  """The `h` of `get_sweep(h)`: every function returns a list of trials (flat override dicts)."""

  @staticmethod
  def sweep(key: str, values: Iterable) -> list[Overrides]:
    """One trial per value of config key `key`."""
    values = list(values)
    if not isinstance(key, str) or not key:
      raise UserError(f'h.sweep({key!r}, ...): give a dotted config key such as '
                      "'optimizer.learning_rate'.")
    if not values:
      raise UserError(f'h.sweep({key!r}, []): give at least one value.')
    return [{key: v} for v in values]

  @staticmethod
  def fixed(key: str, value) -> list[Overrides]:
    """The same value in every trial (a one-trial sweep, for products)."""
    return [{key: value}]

  @staticmethod
  def product(sweeps: Sequence[list[Overrides]]) -> list[Overrides]:
    """Every combination (a grid): the first sweep varies slowest."""
    _check_disjoint(sweeps, 'product')
    return [_merge(combo) for combo in itertools.product(*sweeps)]

  @staticmethod
  def zip(sweeps: Sequence[list[Overrides]]) -> list[Overrides]:
    """The i-th trials of every sweep together; the sweeps must have the same length."""
    lengths = {len(s) for s in sweeps}
    if len(lengths) > 1:
      raise UserError(f'h.zip: the sweeps have different lengths {sorted(lengths)}; zip needs '
                      'equal lengths (use h.product for every combination).')
    _check_disjoint(sweeps, 'zip')
    return [_merge(combo) for combo in zip(*sweeps)]

  @staticmethod
  def chain(sweeps: Sequence[list[Overrides]]) -> list[Overrides]:
    """The trials of one sweep after another."""
    return [dict(t) for s in sweeps for t in s]

  # distributions for `random`
  @staticmethod
  def uniform(low: float, high: float) -> Distribution:
    return Distribution('uniform', float(low), float(high))

  @staticmethod
  def loguniform(low: float, high: float) -> Distribution:
    if not 0 < low < high:
      raise UserError(f'h.loguniform({low}, {high}): needs 0 < low < high.')
    return Distribution('loguniform', float(low), float(high))

  @staticmethod
  def randint(low: int, high: int) -> Distribution:
    """An integer in [low, high], both included."""
    return Distribution('randint', int(low), int(high))

  @staticmethod
  def choice(values: Iterable) -> Distribution:
    values = tuple(values)
    if not values:
      raise UserError('h.choice([]): give at least one value.')
    return Distribution('choice', values=values)

  @staticmethod
  def random(num_trials: int, space: dict[str, Any], seed: int = 0) -> list[Overrides]:
    """`num_trials` independent draws from `space` ({key: Distribution or fixed value}),
    the same for the same seed (Bergstra & Bengio 2012, random search)."""
    if not isinstance(num_trials, int) or num_trials < 1:
      raise UserError(f'h.random({num_trials!r}, ...): give a number of trials >= 1.')
    rng = np.random.default_rng(seed)
    return [{k: d.draw(rng) if isinstance(d, Distribution) else d for k, d in space.items()}
            for _ in range(num_trials)]


def _merge(dicts) -> Overrides:
  out = {}
  for d in dicts:
    out.update(d)
  return out


def _check_disjoint(sweeps, what: str) -> None:
  seen = set()
  for s in sweeps:
    keys = set().union(*(t.keys() for t in s)) if s else set()
    if keys & seen:
      raise UserError(f'h.{what}: key {sorted(keys & seen)[0]!r} is swept twice; each key may '
                      'appear in one factor only.')
    seen |= keys


# -- trials --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Trial:
  name: str             # the trial's folder under the sweep's workdir
  overrides: Overrides  # {dotted key: value}, applied over the base config
  config: Any = dataclasses.field(default=None, compare=False, repr=False)  # the result


def _format(value, digits: int) -> str:
  if isinstance(value, float):
    text = f'{value:.{digits}g}' if digits < 17 else repr(value)
  elif isinstance(value, (tuple, list)):
    text = '-'.join(_format(v, digits) for v in value)
  else:
    text = str(value)
  return re.sub(r'[^A-Za-z0-9._+-]', '_', text)


def make_trials(overrides: list[Overrides]) -> list[Trial]:
  """Names each trial after its overrides (`learning_rate=0.001,latent_dim=2`): the name is
  its folder, so the same overrides always land in the same place (this is what resumes)."""
  if not overrides:
    raise UserError('The sweep is empty: get_sweep(h) (or --sweep_grid) returned no trials.')
  canonical = [repr(sorted(o.items())) for o in overrides]
  if len(set(canonical)) != len(canonical):
    dup = next(o for o, c in zip(overrides, canonical) if canonical.count(c) > 1)
    raise UserError(f'The sweep lists the trial {dup} twice; each trial must differ.')
  keys = list(dict.fromkeys(k for o in overrides for k in o))
  last = [k.rsplit('.', 1)[-1] for k in keys]
  label = {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}
  for digits in (4, 8, 17):  # more digits only where short names collide
    names = [','.join(f'{label[k]}={_format(v, digits)}' for k, v in o.items()) or 'default'
             for o in overrides]
    if len(set(names)) == len(names):
      break
  names = [n if len(n) <= 120 else f'{n[:100]}-{hashlib.sha1(n.encode()).hexdigest()[:10]}'
           for n in names]
  return [Trial(n, dict(o)) for n, o in zip(names, overrides)]


def swept_keys(trials: list[Trial]) -> list[str]:
  return list(dict.fromkeys(k for t in trials for k in t.overrides))


# -- where the trials come from ------------------------------------------------------------------
def config_module(config_path: str):
  """The config file as a module (to find get_sweep and SWEEP_METRIC beside get_config)."""
  path = config_path.partition(':')[0]
  spec = importlib.util.spec_from_file_location('_genlab_sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def trials_from(module, grid: Sequence[str], config) -> list[Trial]:
  """The trials of `--sweep_grid` flags if any, else of the config file's get_sweep(h)."""
  if grid:
    overrides = Hyper.product([_parse_grid(g, config) for g in grid])
  elif hasattr(module, 'get_sweep'):
    overrides = module.get_sweep(Hyper())
    if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, dict)
                                                           for o in overrides):
      raise UserError('get_sweep(h) must return a list of trials, each a dict '
                      '{config key: value} (h.sweep, h.product, h.zip, h.random build them).')
  else:
    raise UserError('This config defines no get_sweep(h): add one beside get_config, or give '
                    "the trials on the command line, e.g. --sweep_grid='optimizer.learning_rate"
                    "=1e-3,3e-4'.")
  # A key or value the config cannot take stops here, before any trial runs.
  return [dataclasses.replace(t, config=apply_overrides(config, t.overrides))
          for t in make_trials(list(overrides))]


def _parse_grid(text: str, config) -> list[Overrides]:
  key, sep, values = text.partition('=')
  if not sep or not values:
    raise UserError(f'--sweep_grid={text!r}: write KEY=V1,V2,... (e.g. '
                    "--sweep_grid='model.latent_dim=2,16,50').")
  current = _lookup(config, key.strip())
  try:
    parsed = ast.literal_eval(f'[{values}]')
  except (ValueError, SyntaxError):
    parsed = values.split(',')
  return Hyper.sweep(key.strip(), [_coerce(v, current) for v in parsed])


def _coerce(value, current):
  if isinstance(current, str) and not isinstance(value, str):
    return str(value)
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    return float(value)
  return value


def _lookup(config, key: str):
  node = config
  for i, part in enumerate(key.split('.')):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      where = '.'.join(key.split('.')[:i]) or 'the top level'
      options = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      raise UserError(f'Sweep key {key!r} is not in the config (no {part!r} at {where}; it '
                      f'has {options}).')
    node = node[part]
  return node


def apply_overrides(config, overrides: Overrides):
  """A copy of `config` with `overrides` set; UserError for a missing key or a wrong type."""
  out = ml_collections.ConfigDict(config.to_dict(), type_safe=True)
  for key, value in overrides.items():
    _lookup(out, key)
    parent, _, leaf = key.rpartition('.')
    node = _lookup(out, parent) if parent else out
    try:
      node[leaf] = _coerce(value, node[leaf])
    except TypeError as e:
      raise UserError(f'Sweep value {value!r} for {key!r} has the wrong type: '
                      f'{str(e).splitlines()[0]}') from None
  return out


def flag_value(value) -> str:
  """The --config.KEY=VALUE text that config_flags parses back to `value`."""
  if isinstance(value, (list, tuple)):
    return repr(tuple(value))
  return repr(value) if isinstance(value, float) else str(value)
