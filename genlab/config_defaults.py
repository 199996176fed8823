"""The keys every experiment config has (DESIGN.md, "Command line"); configs start here."""
from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = ''
  c.seed = 0
  c.dataset = 'mnist5k'
  c.data_dir = ml_collections.FieldReference(None, field_type=str)
  c.batch_size = 100                  # global, over all devices and processes
  c.num_train_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.max_checkpoints_to_keep = 3

  c.data = ml_collections.ConfigDict()
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'     # periodic evaluation during training
  c.data.test_split = 'test'           # final evaluation -> results.json
  c.data.binarize = 'none'             # 'none' | 'dynamic' | 'static'

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 100
  return c


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """`--config file.py:smoke,foo=1` -> ConfigDict(smoke=True, foo=1) over `defaults`."""
  out = ml_collections.ConfigDict(defaults)
  for part in filter(None, (arg or '').split(',')):
    name, _, value = part.partition('=')
    if name not in out:
      from genlab.errors import UserError  # pylint: disable=g-import-not-at-top
      raise UserError(f'Unknown config argument {name!r}: this config takes {sorted(out)}.')
    if isinstance(out[name], bool):
      out[name] = value.lower() not in ('0', 'false', 'no') if value else True
    else:
      out[name] = type(out[name])(value)
  return out
