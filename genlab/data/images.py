"""Image data sets: train and eval batches over decoded splits, deterministic for a seed and
any process count.

The training stream is defined globally: position t of the stream is example
perm_e[t mod N] with e = t // N and perm_e a permutation drawn from (seed, e), so every epoch
is reshuffled. Global batch s holds positions [s*B, (s+1)*B); process p of P takes its rows
[p*b, (p+1)*b), b = B // P. Dynamic binarization noise is drawn per global batch from
(seed, s), so the global batch at step s is the same whatever P is, and resuming needs only
the step. The batches are a `grain.MapDataset` indexed by step (random access, so the
iterator's state is one integer); numpy does the per-batch work vectorized, because a
per-element grain pipeline costs ~8 us a row, comparable to a whole VAE step.
"""
from __future__ import annotations

import sys
from typing import Iterator

import numpy as np

from genlab.data import batches as batches_lib
from genlab.data import source as source_lib
from genlab.errors import UserError

BINARIZE = ('none', 'dynamic', 'static')
_PERM_TAG, _DYNAMIC_TAG = 0x9E3779B9, 0x7F4A7C15  # Separate random streams for order and noise.


def data_get(config, key: str, default):
  """config.data.<key>, or `default` where the config has no data section, no key or None."""
  data = config.get('data', None)
  value = data.get(key, None) if data is not None else None
  return default if value is None else value


def settings(config) -> dict:
  """The data keys of a config, checked, with their defaults: the one place that reads them.

  'held_out_labels' (config.data.held_out_labels, default ()) are classes removed from every
  split except the test split, e.g. the "anomalies" an anomaly detector never sees in training.
  'preprocess' holds config.data.center_crop and config.data.image_size (None or a positive
  int each, default None = images as stored) and config.data.channels (None, 1 or 3), applied
  once when a split is decoded (source.load_split); pass it on as `**s['preprocess']` to every
  source call.
  """
  name = config.get('dataset', None)
  if not isinstance(name, str) or not name:
    raise UserError(f'config.dataset must name a data set, got {name!r}: set --config.dataset '
                    '(e.g. mnist5k).')
  binarize = data_get(config, 'binarize', 'none')
  if binarize not in BINARIZE:
    raise UserError(f'config.data.binarize={binarize!r} is not one of {BINARIZE}: '
                    'set --config.data.binarize to one of them.')
  preprocess = {key: source_lib.check_size(data_get(config, key, None), key)
                for key in ('center_crop', 'image_size')}
  preprocess['channels'] = source_lib.check_channels(data_get(config, 'channels', None))
  return dict(
      name=name, data_dir=config.get('data_dir', None), binarize=binarize, preprocess=preprocess,
      held_out_labels=held_out_labels(config), splits=split_names(config))


def split_names(config) -> dict[str, str]:
  """{'train', 'eval', 'test'} -> config.data.train_split / eval_split / test_split (defaults
  'train', 'validation', 'test')."""
  return {'train': data_get(config, 'train_split', 'train'),
          'eval': data_get(config, 'eval_split', 'validation'),
          'test': data_get(config, 'test_split', 'test')}


def held_out_labels(config) -> tuple[int, ...]:
  """config.data.held_out_labels (default ()) as a tuple of ints, checked for type only."""
  held_out = data_get(config, 'held_out_labels', ())
  if isinstance(held_out, (int, np.integer)) and not isinstance(held_out, bool):
    held_out = (held_out,)
  if (not isinstance(held_out, (tuple, list))
      or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in held_out)):
    raise UserError(f'config.data.held_out_labels={held_out!r} must be a tuple of class labels '
                    '(integers), e.g. --config.data.held_out_labels=7 or "(3, 5)".')
  return tuple(int(c) for c in held_out)


def _kept_rows(s: dict, split: str, labels: np.ndarray) -> np.ndarray | None:
  """Rows of `split` without the held-out classes; None when nothing is removed from it."""
  if not s['held_out_labels'] or split == s['splits']['test']:
    return None
  missing = sorted(set(s['held_out_labels']) - set(np.unique(labels).tolist()))
  if missing:
    raise UserError(f"config.data.held_out_labels: class {missing[0]} is not in split "
                    f"{split!r} of {s['name']!r} (its labels are {sorted(set(labels.tolist()))}); "
                    'hold out a class the data set has.')
  keep = np.flatnonzero(~np.isin(labels, s['held_out_labels']))
  if not len(keep):
    raise UserError(f"config.data.held_out_labels={s['held_out_labels']} removes every example "
                    f"of split {split!r}: keep at least one class.")
  return keep


def load(s: dict, split: str, binarized: bool) -> tuple[np.ndarray, np.ndarray, float]:
  """(images, labels, scale) of `split` without the held-out classes; images * scale is in
  [0, 1]. `binarized` gives the fixed binarization when the config binarizes at all."""
  data = source_lib.load_split(s['name'], split, s['data_dir'], **s['preprocess'])
  images, labels, scale = data.images, data.labels, 1.0 / 255.0
  if binarized and s['binarize'] != 'none':
    images, scale = source_lib.fixed_binary(s['name'], split, s['data_dir'],
                                            **s['preprocess']), 1.0
  keep = _kept_rows(s, split, labels)
  if keep is not None:
    images, labels = images[keep], labels[keep]
  return images, labels, scale


def split_arrays(config, role: str) -> dict[str, np.ndarray]:
  """The whole split of `role` ('train' | 'eval' | 'test') as the eval batches see it:
  {'image': float32 (N, H, W, C) in [0, 1], binarized once with a fixed seed if the config
  binarizes, 'label': int32 (N,)}, held-out classes removed except from the test split."""
  s = settings(config)
  images, labels, scale = load(s, s['splits'][role], binarized=True)
  return {'image': images.astype(np.float32) * np.float32(scale),
          'label': labels.astype(np.int32)}


class TrainBatches:
  """Random-access sequence: item s is this process's rows of global batch s."""

  def __init__(self, images, labels, *, seed, global_batch, process_index, process_count,
               dynamic: bool, scale: float):
    self._images, self._labels = images, labels
    self._seed, self._global = batches_lib.seed64(seed), global_batch
    self._local = global_batch // process_count
    self._offset = process_index * self._local
    self._dynamic, self._scale = dynamic, np.float32(scale)
    self._perms: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return sys.maxsize  # Infinite: epochs repeat, each reshuffled.

  def _perm(self, epoch: int) -> np.ndarray:
    if epoch not in self._perms:
      if len(self._perms) >= 4:  # A batch spans at most a few epochs; keep memory bounded.
        self._perms.pop(min(self._perms))
      rng = np.random.default_rng([self._seed, _PERM_TAG, epoch])
      self._perms[epoch] = rng.permutation(len(self._images))
    return self._perms[epoch]

  def __getitem__(self, step: int) -> dict:
    n = len(self._images)
    t = step * self._global + self._offset + np.arange(self._local)
    epochs, pos = np.divmod(t, n)
    idx = np.empty_like(t)
    for e in np.unique(epochs):
      sel = epochs == e
      idx[sel] = self._perm(int(e))[pos[sel]]
    images = self._images[idx]
    if self._dynamic:  # Fresh Bernoulli draw each time an example is seen (IWAE protocol).
      rng = np.random.default_rng([self._seed, _DYNAMIC_TAG, step])
      noise = rng.random((self._global,) + images.shape[1:], dtype=np.float32)
      local = noise[self._offset:self._offset + self._local]
      image = (local < images / np.float32(255)).astype(np.float32)
    else:
      image = images.astype(np.float32) * self._scale
    return {'image': image, 'label': self._labels[idx].astype(np.int32)}


def _train_arrays(s: dict):
  """(images, labels, scale, dynamic) of the train split for the chosen binarization."""
  images, labels, scale = load(s, s['splits']['train'], binarized=s['binarize'] == 'static')
  return images, labels, scale, s['binarize'] == 'dynamic'


def train_iterator(config, *, process_index: int = 0,
                   process_count: int = 1) -> batches_lib.TrainIterator:
  """This process's share of the global training stream for config.seed."""
  s = settings(config)
  global_batch = config.get('batch_size', None)
  batches_lib.local_batch_size(global_batch, process_count)
  batches_lib.check_process(process_index, process_count)
  return batches_lib.iterator(train_batches(s, config.get('seed', 0), global_batch,
                                            process_index, process_count))


def train_batches(s: dict, seed, global_batch: int, process_index: int,
                  process_count: int) -> TrainBatches:
  """The training stream of one image set (its checked `settings`) for `seed`: item t is this
  process's rows of global batch t. The domains part takes one per domain."""
  images, labels, scale, dynamic = _train_arrays(s)
  return TrainBatches(images, labels, seed=seed, global_batch=global_batch,
                      process_index=process_index, process_count=process_count,
                      dynamic=dynamic, scale=scale)


def train_pixel_mean(config) -> np.ndarray:
  """The mean training image, float32 (H, W, C) in [0, 1] (after binarization's expectation),
  e.g. to start a sigmoid output layer at the data marginals as Goodfellow et al.'s code does."""
  s = settings(config)
  images = load(s, s['splits']['train'], binarized=False)[0]
  return (images.mean(axis=0, dtype=np.float64) / 255.0).astype(np.float32)


def eval_batches(config, split: str, batch_size: int, *, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """One ordered pass over `split` in global batches of `batch_size`, this process's rows.

  The last global batch is padded with zeros to full size; 'mask' is 1.0 for real rows and
  0.0 for padding. Every process yields the same number of batches. Under 'dynamic' or
  'static' binarization the split is binarized once with a fixed seed, so it is the same
  eval set every time.
  """
  s = settings(config)
  local = batches_lib.local_batch_size(batch_size, process_count, what='eval batch_size')
  batches_lib.check_process(process_index, process_count)
  images, labels, scale = load(s, split, binarized=True)
  return (eval_rows(images, labels, scale, idx, real)
          for idx, real in batches_lib.eval_rows(len(images), batch_size, local, process_index))


def eval_rows(images, labels, scale, idx, real) -> dict[str, np.ndarray]:
  """The eval batch of rows `idx` (batches.eval_rows): padding rows are zeros with mask 0."""
  image = images[idx].astype(np.float32) * np.float32(scale)
  image[~real] = 0.0
  return {'image': image,
          'label': np.where(real, labels[idx], 0).astype(np.int32),
          'mask': real.astype(np.float32)}


def get_info(config) -> source_lib.DataInfo:
  """Shapes and split sizes; prepares an offline builder on first use, UserError otherwise.

  image_shape is the shape after config.data.center_crop / image_size / channels, read from
  the TFDS metadata without decoding the splits.
  """
  return info_of(settings(config))


def info_of(s: dict) -> source_lib.DataInfo:
  """get_info of the settings `s` (a dict like settings' result)."""
  shapes, classes, sizes = set(), set(), {}
  for role, split in s['splits'].items():
    shape, num_classes, n = source_lib.split_info(s['name'], split, s['data_dir'],
                                                  **s['preprocess'])
    shapes.add(shape)
    classes.add(num_classes)
    sizes[role] = n
  num_classes = classes.pop() if len(classes) == 1 else max(classes)
  outside = [c for c in s['held_out_labels'] if not 0 <= c < num_classes]
  if outside:
    raise UserError(f"config.data.held_out_labels: class {outside[0]} is not in {s['name']!r}, "
                    f'whose labels are 0..{num_classes - 1}; hold out one of those.')
  if len(shapes) != 1 or len(shape) != 3:
    raise UserError(f"Data set '{s['name']}' has image shapes {sorted(shapes)} across splits: "
                    'genlab needs one (H, W, C) shape.')
  return source_lib.DataInfo(name=s['name'], image_shape=shape, num_classes=num_classes,
                             num_examples=sizes)
