"""Optimizers and learning-rate schedules from `config.optimizer`, shared by every method."""
from __future__ import annotations

import ml_collections
import numpy as np
import optax

from genlab.errors import UserError, one_of

SCHEDULES = ('constant', 'cosine', 'burda', 'linear_decay')
# config.optimizer keys read here; every other key is passed to the optax function by name.
_OPTIMIZER_KEYS = ('name', 'learning_rate', 'schedule', 'grad_clip_norm', 'decay_steps',
                   'warmup_steps')



def burda_schedule(learning_rate: float, num_train_steps: int, num_stages: int = 8):
  """Burda et al. 2016, Sec. 5: stage i = 0..7 runs 3^i passes at lr * 10^(-i/7).

  The 3280 passes are scaled to `num_train_steps`: stage i ends at step
  round(num_train_steps * sum_{j<=i} 3^j / 3280). Stages shorter than a step merge.
  """
  lengths = 3.0 ** np.arange(num_stages)
  ends = np.cumsum(lengths) / lengths.sum() * num_train_steps
  scale = 10.0 ** (-1.0 / (num_stages - 1))
  boundaries = {}
  for end in ends[:-1]:
    boundaries[int(round(end))] = boundaries.get(int(round(end)), 1.0) * scale
  return optax.piecewise_constant_schedule(learning_rate, boundaries)


def linear_decay_schedule(learning_rate: float, num_train_steps: int, decay_steps: int):
  """Constant, then linear to 0 over the last `decay_steps` steps: the official CycleGAN's
  `lambda_rule` (Zhu et al. 2017, Sec. 7.1: "keep the same learning rate for the first 100
  epochs and linearly decay the rate to zero over the next 100"), per step, not per epoch."""
  decay_steps = min(max(int(decay_steps), 1), num_train_steps)
  return optax.join_schedules(
      [optax.constant_schedule(learning_rate),
       optax.linear_schedule(learning_rate, 0.0, decay_steps)],
      [num_train_steps - decay_steps])


def make_optimizer(config: ml_collections.ConfigDict, section: str = 'optimizer'):
  """-> (optax transformation, learning-rate schedule) from config.<section>.

  Burda et al. 2016 use Adam with b1=0.9, b2=0.999, eps=1e-4 and the 'burda' schedule. A GAN
  has one section per player ('g_optimizer', 'd_optimizer').
  """
  opt = config.get(section) or ml_collections.ConfigDict()
  name = opt.get('name', 'adam')
  lr = float(opt.get('learning_rate', 1e-3))
  kind = one_of(opt.get('schedule', 'constant'), SCHEDULES, f'{section}.schedule')
  warmup = int(opt.get('warmup_steps', 0) or 0)
  steps = max(1, int(config.get('num_train_steps', 1)) - warmup)
  schedule = {'constant': lambda: optax.constant_schedule(lr),
              'cosine': lambda: optax.cosine_decay_schedule(lr, steps),
              'burda': lambda: burda_schedule(lr, steps),
              'linear_decay': lambda: linear_decay_schedule(
                  lr, steps, opt.get('decay_steps', None) or steps // 2)}[kind]()
  if warmup:  # linearly from 0, then the schedule over the remaining steps (Ho et al. 2020)
    schedule = optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), schedule],
                                    [warmup])
  make_tx = getattr(optax, name, None)
  if not callable(make_tx) or name.startswith('_'):
    raise UserError(f'config.{section}.name={name!r} is not an optax optimizer '
                    "(e.g. 'adam', 'adamw', 'sgd').")
  kwargs = {k: v for k, v in opt.items() if k not in _OPTIMIZER_KEYS}
  try:
    tx = make_tx(learning_rate=schedule, **kwargs)
  except TypeError as e:
    raise UserError(f'config.{section}: optax.{name} rejects {sorted(kwargs)}: {e}') from e
  clip = opt.get('grad_clip_norm')
  if clip:
    tx = optax.chain(optax.clip_by_global_norm(float(clip)), tx)
  return tx, schedule
