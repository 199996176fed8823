"""The data layer's one interface: what kind of data a config has, and the part that serves it.

  'none'     config.dataset = 'none': data-free methods; empty batches (batches.py)
  'domains'  config.dataset = 'domains': several unpaired image sets (domains.py)
  'text'     config.data.tokenizer is set: token windows for language models (text.py)
  'images'   anything else: one image data set (images.py)

train_iterator, eval_batches, split_arrays and get_info send a config to its part; the parts
share the iterator and the eval-row helper of batches.py and read through source.py.
"""
from __future__ import annotations

from typing import Iterator

from genlab.data import batches, domains, images, source, text, text_sources
# Names that lived here before the parts were split out, for code that imports them from here.
from genlab.data.batches import (NO_DATA, TrainIterator, is_data_free,  # noqa: F401
                                 local_batch_size)
from genlab.data.images import held_out_labels, settings, train_pixel_mean  # noqa: F401
from genlab.errors import UserError

KINDS = ('none', 'domains', 'text', 'images')
_PARTS = {'domains': domains, 'text': text, 'images': images}


def kind(config) -> str:
  """'none' | 'domains' | 'text' | 'images': which part of the data layer serves `config`."""
  if is_data_free(config):
    return 'none'
  if domains.is_domains(config):
    return 'domains'
  if text.is_text(config):
    return 'text'
  return 'images'


def train_iterator(config, *, process_index: int = 0, process_count: int = 1) -> TrainIterator:
  """This process's share of the global training stream for config.seed; its state is the
  next global step."""
  if kind(config) == 'none':
    return batches.no_data_train_iterator()
  return _PARTS[kind(config)].train_iterator(config, process_index=process_index,
                                             process_count=process_count)


def eval_batches(config, split: str, batch_size: int, *, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """One ordered pass over `split` in global batches of `batch_size`, this process's rows.

  The last global batch is padded to full size; 'mask' is 1.0 for real rows and 0.0 for
  padding, and every process yields the same number of batches. Images under 'dynamic' or
  'static' binarization are binarized once with a fixed seed, so it is the same eval set every
  time.
  """
  if kind(config) == 'none':
    return batches.no_data_eval_batches()
  return _PARTS[kind(config)].eval_batches(config, split, batch_size,
                                           process_index=process_index,
                                           process_count=process_count)


def split_arrays(config, role: str) -> dict:
  """The whole split of `role` ('train' | 'eval' | 'test') as the eval batches see it: images
  {'image': float32 (N, H, W, C) in [0, 1], 'label': int32 (N,)} (binarized once with a fixed
  seed if the config binarizes; held-out classes removed except from the test split), text
  {'ids': int32 (N,)}, domains {name: {'image', 'label'}}."""
  if kind(config) == 'none':
    raise UserError(f'config.dataset={NO_DATA!r} has no {role!r} split: method '
                    f'{config.get("method")!r} optimises images through a fixed network.')
  return _PARTS[kind(config)].split_arrays(config, role)


def get_info(config) -> source.DataInfo:
  """Shapes and split sizes; prepares an offline builder on first use, UserError otherwise."""
  if kind(config) == 'none':
    return source.DataInfo(name=NO_DATA, image_shape=(), num_classes=0,
                           num_examples={'train': 0, 'eval': 0, 'test': 0})
  return _PARTS[kind(config)].get_info(config)


def clear_cache() -> None:
  """Forgets what every part has decoded (tests use it; a run never needs to)."""
  source.clear_cache()
  text_sources.clear_cache()
  text.clear_cache()
