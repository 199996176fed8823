"""The range of every numeric config value, checked before a run writes anything.

A rule is keyed by a glob pattern over the dotted key ('*learning_rate' matches
'g_optimizer.learning_rate'); the first matching rule applies, to the value or to each
element of a tuple. `RULES` covers the keys every config has (the trainer's, the data layer's,
the optimizers'); a method module adds its own as `CONFIG_RANGES` (the same form). Every
numeric value must also be finite, and no value may be negative unless a rule says so.
tests/test_config_checks.py checks that every numeric key of every config has a rule, so a new
key cannot slip through unchecked.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import math
from typing import Mapping, Optional

import numpy as np

from genlab.errors import UserError


@dataclasses.dataclass(frozen=True)
class Range:
  """Numbers between `low` and `high` (None: unbounded); `integer` asks for an int."""
  low: Optional[float] = None
  high: Optional[float] = None
  low_open: bool = False
  high_open: bool = False
  integer: bool = False
  why: str = ''
  names: tuple[str, ...] = ()  # words the key also takes, e.g. 'auto'

  def admits(self, v) -> bool:
    if self.integer and not float(v).is_integer():
      return False
    if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
      return False
    if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
      return False
    return True

  def describe(self) -> str:
    words = ''.join(f' or {name!r}' for name in self.names)
    return self._describe_numbers() + words

  def _describe_numbers(self) -> str:
    kind = 'an integer' if self.integer else 'a number'
    if self.low is not None and self.high is not None:
      return (f'{kind} in {"(" if self.low_open else "["}{self.low:g}, {self.high:g}'
              f'{")" if self.high_open else "]"}')
    if self.low is not None:
      return f'{kind} {">" if self.low_open else ">="} {self.low:g}'
    if self.high is not None:
      return f'{kind} {"<" if self.high_open else "<="} {self.high:g}'
    return kind


def count_or(*names: str, why: str = '') -> Range:
  return Range(low=1, integer=True, why=why, names=names)


def count(why: str = '') -> Range:
  return Range(low=1, integer=True, why=why)


def natural(why: str = '') -> Range:
  return Range(low=0, integer=True, why=why)


def positive(why: str = '') -> Range:
  return Range(low=0, low_open=True, why=why)


def non_negative(why: str = '') -> Range:
  return Range(low=0, why=why)


def fraction(why: str = '') -> Range:
  """[0, 1): a probability of dropping, a decay, a momentum."""
  return Range(low=0, high=1, high_open=True, why=why)


ANY_INTEGER = Range(integer=True)

# The keys every config has. Order matters: the first matching pattern applies.
RULES: dict[str, Range] = {
    'seed': ANY_INTEGER,
    'num_train_steps': count('a run trains at least one step'),
    '*_every_steps': count(),
    'max_checkpoints_to_keep': count(),
    '*batch_size': count(),
    'batch_split': count_or('auto', why="slices of each device's batch, genlab/batch_split.py"),
    'divergence.max_rollbacks': natural(),
    'debug.nan_at_step': natural('0 turns the fault off'),
    'data.held_out_labels': natural(),
    # data.X and each domain's data.domains.<name>.X
    'data*.center_crop': count(),
    'data*.image_size': count(),
    'data*.channels': Range(low=1, high=3, integer=True, why='1 gray, 3 RGB'),
    # optimizers (genlab/optim.py): any section named *optimizer
    '*learning_rate': positive('a learning rate <= 0 does not descend the loss'),
    '*optimizer.b1': fraction(),
    '*optimizer.b2': fraction(),
    '*optimizer.eps': positive(),
    '*optimizer.grad_clip_norm': positive(),
    '*optimizer.weight_decay': non_negative(),
    '*optimizer.decay_steps': count('the steps of the linear decay to 0 at the end'),
    '*optimizer.warmup_steps': natural('the steps of the linear warm-up from 0; 0: none'),
    # sample metrics (genlab/metrics/sample_metrics.py), any generative method
    'eval.num_metric_samples': Range(low=2, integer=True),
    'eval.parzen_samples': count(),
    'eval.cas_samples': count(),
    'eval.precision_recall_k': count(),
    'eval.vgg_feature_size': Range(low=32, integer=True),
}

POLICIES = ('stop', 'rollback')


def _flatten(d, prefix=''):
  for k, v in d.items():
    if hasattr(v, 'items'):
      yield from _flatten(v, f'{prefix}{k}.')
    else:
      yield f'{prefix}{k}', v


def _numbers(value) -> Optional[list]:
  """The numbers of a scalar or a tuple of scalars; None for anything else (strings, bools)."""
  items = value if isinstance(value, (tuple, list)) else (value,)
  out = []
  for v in items:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
      return None
    out.append(v)
  return out


def rule_for(key: str, rules: Mapping[str, Range]) -> Optional[Range]:
  for pattern, rule in rules.items():
    if fnmatch.fnmatchcase(key, pattern):
      return rule
  return None


def numeric_keys(config) -> list[str]:
  """The dotted keys whose value is a number or a tuple of numbers."""
  return [k for k, v in _flatten(config) if v is not None and _numbers(v)]


def check(config, method_ranges: Optional[Mapping[str, Range]] = None) -> None:
  """UserError naming the first value out of its range (see the module docstring)."""
  rules = {**(method_ranges or {}), **RULES}
  for key, value in _flatten(config):
    if value is None:
      continue
    numbers, rule = _numbers(value), rule_for(key, rules)
    if numbers is None and rule is not None and value not in rule.names:
      # A key with a range holds numbers: ('wide',) for model.hidden_dims is a typo.
      raise UserError(f'config.{key}={value!r}: give {rule.describe()}'
                      f'{" or a tuple of them" if isinstance(value, (tuple, list)) else ""}.')
    if not numbers:
      continue
    rule = rule or non_negative()
    for v in numbers:
      if not math.isfinite(float(v)) or not rule.admits(v):
        shown = value if len(numbers) == 1 and not isinstance(value, (tuple, list)) else v
        what = f'config.{key}={shown!r}' + (f' (in {tuple(value)!r})'
                                             if isinstance(value, (tuple, list)) else '')
        raise UserError(f'{what}: give {rule.describe()}'
                        f'{f" ({rule.why})" if rule.why else ""}.')
  divergence = config.get('divergence') or {}
  policy = divergence.get('policy', 'stop')
  if policy not in POLICIES:
    raise UserError(f'config.divergence.policy={policy!r} is not known: use one of '
                    f'{list(POLICIES)}.')
