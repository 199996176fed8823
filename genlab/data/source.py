"""Opening TFDS splits offline and decoding them once into numpy arrays.

Every read goes through `tfds.data_source(..., download=False)`: nothing is ever
downloaded. Our own builders (builders.OFFLINE_BUILDERS) are prepared from pip packages on
first use; a catalogue name (`mnist`, `cifar10`, ...) is read where the user has prepared it
and otherwise stops with a UserError naming the offline builder to use instead.

A split is decoded once per process into uint8 images and int32 labels and cached: a VAE
step takes about 1 ms, so decoding PNGs per step would dominate the run.
"""
from __future__ import annotations

import dataclasses
import os
import zlib

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from genlab.data import builders
from genlab.errors import UserError

# Catalogue names -> the offline builder that stands in for them.
_OFFLINE_ALTERNATIVE = {
    'mnist': 'mnist5k', 'binarized_mnist': 'mnist5k', 'fashion_mnist': 'mnist5k',
    'kmnist': 'mnist5k', 'emnist': 'mnist5k',
}
_STATIC_SEED = 20160501  # Fixed forever: the static binarization is part of the data set.
_CHUNK = 1024  # Rows per noise draw for the fixed binarization; fixed so draws never change.


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model and trainer need to know about a data set, without reading the pixels."""
  name: str
  image_shape: tuple[int, int, int]  # (H, W, C)
  num_classes: int
  num_examples: dict[str, int]  # keys 'train', 'eval', 'test': the sizes of the splits in use


@dataclasses.dataclass(frozen=True)
class Split:
  """One decoded split: images uint8 (N, H, W, C), labels int32 (N,)."""
  images: np.ndarray
  labels: np.ndarray


_SPLITS: dict[tuple, Split] = {}
_FIXED_BINARY: dict[tuple, np.ndarray] = {}


def clear_cache() -> None:
  """Forgets decoded splits (tests use it; a run never needs to)."""
  _SPLITS.clear()
  _FIXED_BINARY.clear()


def resolve_data_dir(data_dir: str | None) -> str:
  """config.data_dir, else $TFDS_DATA_DIR read now, else ~/tensorflow_datasets.

  TFDS itself freezes the default at import time, so a TFDS_DATA_DIR set later (as tests
  and launch scripts do) would be ignored; resolving here and passing it explicitly keeps
  preparing, reading, caching and error messages on the same directory.
  """
  return os.fspath(data_dir) if data_dir else tfds.core.constants.get_default_data_dir()


def _offline_list() -> str:
  return ' or '.join(f'--config.dataset={n} ({d})' for n, d in builders.OFFLINE_BUILDERS.items())


def _prepare_offline(name: str, data_dir: str | None) -> None:
  """Writes an offline builder's array_record files on first use (a few seconds)."""
  builder = tfds.builder(name, data_dir=data_dir)
  if builder.is_prepared():
    return
  logging.info('Preparing %s into %s (first use; offline, a few seconds).', name,
               resolve_data_dir(data_dir))
  try:
    builder.download_and_prepare()
  except Exception:
    # Another process preparing the same data_dir may have won the final rename.
    if not tfds.builder(name, data_dir=data_dir).is_prepared():
      raise


def open_split(name: str, split: str, data_dir: str | None):
  """Returns the random-access data source of one split, or raises a one-line UserError."""
  data_dir = resolve_data_dir(data_dir)
  if _base_name(name) in builders.OFFLINE_BUILDERS:
    _prepare_offline(name, data_dir)
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise UserError(
        f"Unknown data set '{name}' (not in the TFDS catalogue, nor in the data dir "
        f'{resolve_data_dir(data_dir)}): check the spelling, or use {_offline_list()}.'
    ) from e
  except Exception as e:  # TFDS raises KeyError/NotImplementedError/ValueError; diagnose here.
    _diagnose(name, split, data_dir, e)
    raise


def _base_name(name: str) -> str:
  """'mnist5k:1.0.0' -> 'mnist5k', 'cycle_gan/horse2zebra' -> 'cycle_gan'."""
  return name.split('/')[0].split(':')[0]


def _diagnose(name: str, split: str, data_dir: str | None, error: Exception) -> None:
  """Turns TFDS's failure to open a split into a UserError when the user can fix it."""
  builder = tfds.builder(name, data_dir=data_dir)
  root = resolve_data_dir(data_dir)
  if not builder.is_prepared():
    alt = _OFFLINE_ALTERNATIVE.get(_base_name(name))
    use = f'--config.dataset={alt} ({builders.OFFLINE_BUILDERS[alt]})' if alt else _offline_list()
    raise UserError(
        f"Data set '{name}' is not prepared in {root} and cannot be downloaded here (no "
        f'network). Use {use}, or prepare {name} with TFDS where you have network (needs '
        f'tensorflow, `pip install tensorflow`): `tfds build {name} --data_dir={root} '
        '--file_format=array_record`.') from error
  formats = builder.info.available_file_formats() or {builder.info.file_format}
  if not formats & tfds.core.FileFormat.with_random_access():
    raise UserError(
        f"Data set '{name}' is prepared in {root} in the {builder.info.file_format} format, which "
        f'has no random access: re-prepare it with `tfds build {name} --data_dir={root} '
        f'--file_format=array_record`.') from error
  known = sorted(builder.info.splits)
  base = split.split('[')[0].split('+')[0]
  if known and base not in known:
    raise UserError(f"Split '{split}' is not in data set '{name}' (its splits: "
                    f"{', '.join(known)}): fix --config.data.*_split.") from error


def _features(source):
  features = source.dataset_info.features
  if 'image' not in features:
    raise UserError(f"Data set '{source.dataset_info.name}' has no 'image' feature: genlab's "
                    "image pipeline needs one; pick an image data set with 'image' and 'label'.")
  return features


def split_info(name: str, split: str, data_dir: str | None):
  """(image_shape, num_classes, num_examples) of a split without decoding its pixels."""
  source = open_split(name, split, data_dir)
  features = _features(source)
  shape = tuple(features['image'].shape)
  if None in shape:
    shape = tuple(np.asarray(source[0]['image']).shape)
  num_classes = features['label'].num_classes if 'label' in features else 0
  return shape, num_classes, len(source)


def load_split(name: str, split: str, data_dir: str | None) -> Split:
  """The whole split as arrays, decoded once per process (file order, not shuffled)."""
  key = (name, split, resolve_data_dir(data_dir))
  if key not in _SPLITS:
    source = open_split(name, split, data_dir)
    has_label = 'label' in _features(source)
    n = len(source)
    images, labels = None, np.zeros((n,), np.int32)
    for i in range(n):  # Per-item: TFDS's mock_data breaks the batched __getitems__.
      example = source[i]
      image = np.asarray(example['image'])
      if images is None:
        images = np.empty((n,) + image.shape, np.uint8)
      if image.shape != images.shape[1:]:
        raise UserError(f"Data set '{name}' has images of different shapes ({image.shape} vs "
                        f'{images.shape[1:]}): genlab needs one fixed image shape.')
      images[i] = image
      if has_label:
        labels[i] = example['label']
    if images is None:
      raise UserError(f"Split '{split}' of data set '{name}' is empty: pick another split.")
    _SPLITS[key] = Split(images, labels)
  return _SPLITS[key]


def bernoulli(rng: np.random.Generator, images_u8: np.ndarray) -> np.ndarray:
  """0/1 uint8 with P(1) = intensity/255: u < x/255 (x = 255 is always 1, x = 0 never)."""
  return (rng.random(images_u8.shape, dtype=np.float32) < images_u8 / np.float32(255)).astype(
      np.uint8)


def fixed_binary(name: str, split: str, data_dir: str | None) -> np.ndarray:
  """The split binarized once, pixel ~ Bernoulli(intensity), with a seed fixed per split.

  Used for eval/test under 'dynamic' (so the eval set is the same every time) and for every
  split under 'static'. The noise depends only on (name, split, row), never on the run.
  """
  key = (name, split, resolve_data_dir(data_dir))
  if key not in _FIXED_BINARY:
    images = load_split(name, split, data_dir).images
    tag = zlib.crc32(f'{name}|{split}'.encode())
    out = np.empty_like(images)
    for start in range(0, len(images), _CHUNK):
      rows = images[start:start + _CHUNK]
      rng = np.random.default_rng([_STATIC_SEED, tag, start // _CHUNK])
      out[start:start + _CHUNK] = bernoulli(rng, rows)
    _FIXED_BINARY[key] = out
  return _FIXED_BINARY[key]
