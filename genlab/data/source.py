"""Opening TFDS splits offline and decoding them once into numpy arrays.

Every read goes through `tfds.data_source(..., download=False)`: nothing is ever
downloaded. Our own builders (builders.OFFLINE_BUILDERS) are prepared from pip packages on
first use; a catalogue name (`mnist`, `cifar10`, ...) is read where the user has prepared it
and otherwise stops with a UserError naming the offline builder to use instead. A prepared
folder damaged afterwards (a truncated, missing or corrupt shard; a dataset_info.json that is
not JSON) stops with a UserError naming the file and how to get a good copy (_damaged).

A split is decoded once per process into uint8 images and int32 labels and cached: a VAE
step takes about 1 ms, so decoding PNGs per step would dominate the run. The optional center
crop and resize (config.data.center_crop, config.data.image_size) are applied in that same
pass, so a large data set is held in memory at its training size (CelebA's 162,770 train
images: 2.0 GB at 64x64x3 instead of 19 GB at 218x178x3), and so is the channel conversion
(config.data.channels: 1 = luminance, 3 = gray repeated). A user's image folder
(`folder:PATH`, folders.py) is decoded by the same code into the same cache.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import time
from typing import Any, Iterator
import zlib

from absl import logging
from google.protobuf import json_format, message
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from genlab import log
from genlab.data import builders, folders
from genlab.errors import UserError

# Catalogue names -> the offline builder that stands in for them.
_OFFLINE_ALTERNATIVE = {
    'mnist': 'mnist5k', 'binarized_mnist': 'mnist5k', 'fashion_mnist': 'mnist5k',
    'kmnist': 'mnist5k', 'emnist': 'mnist5k', 'tiny_shakespeare': 'shakespeare',
}
_STATIC_SEED = 20160501  # Fixed forever: the static binarization is part of the data set.
_CHUNK = 1024  # Rows per noise draw for the fixed binarization; fixed so draws never change.
_READ_CHUNK = 256  # Examples per batched read while decoding a split.
_LOG_ABOVE = 20_000  # Splits larger than this log their decoding progress.
# PIL's resize is antialiased (its kernel widens with the downscale factor); bicubic is the
# reference resize of clean-fid (Parmar et al. 2022); Lanczos rings more at edges.
_RESAMPLE = Image.BICUBIC


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """What a model and trainer need to know about a data set, without reading the pixels."""
  name: str
  image_shape: tuple[int, int, int]  # (H, W, C)
  num_classes: int
  num_examples: dict[str, int]  # keys 'train', 'eval', 'test': the sizes of the splits in use
  # Text data sets (data/text.py): image_shape is (), num_examples counts tokens.
  tokenizer: Any = None
  # config.dataset = 'domains' (data/domains.py): each domain's own info, by domain name.
  domains: dict[str, 'DataInfo'] | None = None

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size if self.tokenizer is not None else 0


@dataclasses.dataclass(frozen=True)
class Split:
  """One decoded split: images uint8 (N, H, W, C), labels int32 (N,)."""
  images: np.ndarray
  labels: np.ndarray


_SPLITS: dict[tuple, Split] = {}
_FIXED_BINARY: dict[tuple, np.ndarray] = {}


def clear_cache() -> None:
  """Forgets decoded image splits (tests use it; a run never needs to). pipeline.clear_cache
  forgets what every part of the data layer holds."""
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
  builder = _builder(name, data_dir)
  if builder.is_prepared():
    return
  if builder.data_path.exists():
    # TFDS writes into a temporary folder and renames it when done, so a version folder
    # without dataset_info.json was damaged afterwards; download_and_prepare would only log
    # "Reusing dataset" and leave it unreadable.
    raise _damaged(name, data_dir, os.path.join(builder.data_dir, _INFO_FILE))
  log.info(f'preparing {name} into {resolve_data_dir(data_dir)} (first use; offline, a few '
           'seconds).')
  try:
    # TFDS's own lines ("Downloading and preparing dataset Unknown size ...") and progress
    # bars say nothing here; a failure still raises.
    tfds.disable_progress_bar()
    with contextlib.redirect_stdout(io.StringIO()):
      builder.download_and_prepare()
  except Exception:
    # Another process preparing the same data_dir may have won the final rename.
    if not _builder(name, data_dir).is_prepared():
      raise
  finally:
    tfds.enable_progress_bar()


def open_split(name: str, split: str, data_dir: str | None):
  """Returns the random-access data source of one split, or raises a one-line UserError."""
  data_dir = resolve_data_dir(data_dir)
  if _base_name(name) in {**builders.OFFLINE_BUILDERS, **builders.TEXT_BUILDERS}:
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


# --- damaged prepared files ---------------------------------------------------------------

_INFO_FILE = 'dataset_info.json'
_METADATA_FILES = (_INFO_FILE, 'features.json')
# What tfds.builder raises on damaged metadata: protobuf's ParseError (dataset_info.json that
# is not JSON, or not a DatasetInfo), json's JSONDecodeError (features.json, which TFDS reads
# for data sets it has no code for) and DatasetInfoFileError (dataset_info.json unreadable).
_METADATA_ERRORS = (json_format.ParseError, json.JSONDecodeError,
                    tfds.core.dataset_info.DatasetInfoFileError)
# What reading one example of a damaged shard raises (each seen on real damage): RuntimeError
# from array_record (a missing or truncated file, a chunk whose checksum fails), protobuf's
# DecodeError (a record that is not a serialized example), OSError from PIL (PNG bytes that
# do not decode; UnidentifiedImageError is one).
_READ_ERRORS = (RuntimeError, OSError, message.DecodeError)
_REASON_CHARS = 300  # array_record's messages run long; the line must stay readable.


def _reason(error: BaseException) -> str:
  """'Type: first line of the message', shortened: what the one-line error appends."""
  lines = str(error).strip().splitlines()
  text = f'{type(error).__name__}: {lines[0]}' if lines else type(error).__name__
  return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS - 3] + '...'


def _is_version(folder: str) -> bool:
  return re.fullmatch(r'\d+\.\d+\.\d+', folder) is not None


def _registered(name: str):
  """The TFDS builder class of `name`, or None for a data set TFDS has no code for."""
  try:
    return tfds.builder_cls(_base_name(name))
  except tfds.core.registered.DatasetNotFoundError:
    return None


def _prepared_folder(name: str, data_dir: str | None) -> str:
  """<data dir>/<name>[/<config>]/<version>, found without constructing the builder (which is
  what fails when the metadata is damaged): the version in the name, else the registered
  builder's, else the newest version folder there; <data dir>/<name> when there is none."""
  base, _, version = name.partition(':')
  folder = os.path.join(resolve_data_dir(data_dir), *base.split('/'))
  if version:
    return os.path.join(folder, version)
  try:
    present = sorted((v for v in os.listdir(folder) if _is_version(v)),
                     key=lambda v: tuple(map(int, v.split('.'))))
  except OSError:
    present = []
  registered = _registered(name)
  if registered is not None and str(registered.VERSION) in present:
    return os.path.join(folder, str(registered.VERSION))
  return os.path.join(folder, present[-1]) if present else folder


def _rebuild_hint(name: str, data_dir: str | None, folder: str) -> str:
  """What to do about a damaged prepared folder: genlab's builders prepare again offline."""
  if _base_name(name) in {**builders.OFFLINE_BUILDERS, **builders.TEXT_BUILDERS}:
    return f'delete {folder} and re-run: genlab prepares {name} again'
  root = resolve_data_dir(data_dir)
  if _registered(name) is None:  # TFDS reads it from its folder alone: `tfds build` cannot.
    return f'delete {folder} and prepare {name} again with the TFDS builder that wrote it'
  return (f'delete {folder} and rebuild it where there is network (needs tensorflow, `pip '
          f'install tensorflow`): `tfds build {name} --data_dir={root} --file_format=array_record`')


def _damaged(name: str, data_dir: str | None, path: str,
            error: BaseException | None = None, folder: str | None = None) -> UserError:
  """The one-line UserError for a damaged file of a prepared data set: which file, TFDS's or
  array_record's reason, and how to get a good copy. `folder` defaults to path's folder."""
  folder = folder or os.path.dirname(path)
  if not os.path.exists(path):
    what = f'{path} is missing'
  else:
    what = f'{path} is damaged' + (f' ({_reason(error)})' if error is not None else '')
  return UserError(f"Data set '{name}': {what}: {_rebuild_hint(name, data_dir, folder)}.")


def _builder(name: str, data_dir: str | None):
  """tfds.builder(name), or a one-line UserError naming the damaged metadata file."""
  try:
    return tfds.builder(name, data_dir=data_dir)
  except _METADATA_ERRORS as e:
    folder = _prepared_folder(name, data_dir)
    path, reason = os.path.join(folder, _INFO_FILE), e
    # Parse the files again to say which one it is, with json's own short reason.
    for file in _METADATA_FILES:
      candidate = os.path.join(folder, file)
      try:
        with open(candidate, encoding='utf-8') as f:
          json.load(f)
      except FileNotFoundError:
        continue  # features.json is optional; a missing dataset_info.json is named below.
      except (OSError, ValueError) as bad:  # ValueError: JSONDecodeError, UnicodeDecodeError.
        path, reason = candidate, bad
        break
    raise _damaged(name, data_dir, path, reason, folder) from e


def _shard_of(source, index: int) -> str | None:
  """The array_record file that holds example `index` of a TFDS data source, if it says."""
  try:
    instructions = source.dataset_info.splits[source.split].file_instructions
  except Exception:  # pylint: disable=broad-except  (only used to word an error)
    return None
  for instruction in instructions:
    if index < instruction.take:
      return os.fspath(instruction.filename)
    index -= instruction.take
  return None


def read_example(source, index: int):
  """source[index]; a shard that fails to read or decode is a one-line UserError naming it.

  Both the image (load_split, split_info) and the text (text_sources.load_documents) paths read
  through here, so they word a damaged file the same way.
  """
  try:
    return source[index]
  except _READ_ERRORS as e:
    info = source.dataset_info
    name = info.full_name.rsplit('/', 1)[0]  # 'cycle_gan/horse2zebra/2.0.0' -> without version
    root = info.data_dir  # <root>/<name>[/<config>]/<version>
    for _ in range(name.count('/') + 2):
      root = os.path.dirname(root)
    path = _shard_of(source, index) or info.data_dir
    raise _damaged(name, root, path, e, folder=info.data_dir) from e


def _diagnose(name: str, split: str, data_dir: str | None, error: Exception) -> None:
  """Turns TFDS's failure to open a split into a UserError when the user can fix it."""
  builder = _builder(name, data_dir)
  root = resolve_data_dir(data_dir)
  if not builder.is_prepared():
    if builder.data_path.exists():  # A prepared folder that lost its dataset_info.json.
      raise _damaged(name, data_dir, os.path.join(builder.data_dir, _INFO_FILE)) from error
    alt = _OFFLINE_ALTERNATIVE.get(_base_name(name))
    described = {**builders.OFFLINE_BUILDERS, **builders.TEXT_BUILDERS}
    use = f'--config.dataset={alt} ({described[alt]})' if alt else _offline_list()
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


def check_size(value, key: str) -> int | None:
  """`value` as an int if it is a positive integer, None if None, else a one-line UserError."""
  if value is None:
    return None
  if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
      and value > 0:
    return int(value)
  raise UserError(f'config.data.{key}={value!r} must be a positive integer (pixels) or None: '
                  f'set --config.data.{key} to one, e.g. 64.')


def check_channels(value, key: str = 'channels') -> int | None:
  """`value` as an int if it is 1 or 3, None if None, else a one-line UserError."""
  if value is None:
    return None
  if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
      and value in (1, 3):
    return int(value)
  raise UserError(f'config.data.{key}={value!r} must be 1 (gray), 3 (RGB) or None (as stored): '
                  f'set --config.data.{key} to one of them.')


def processed_shape(shape, center_crop: int | None, image_size: int | None,
                    name: str = 'the data set', channels: int | None = None
                    ) -> tuple[int, int, int]:
  """The (H, W, C) that crop_and_resize and convert_channels make of `shape`; UserError if the
  crop does not fit."""
  center_crop = check_size(center_crop, 'center_crop')
  image_size = check_size(image_size, 'image_size')
  h, w, c = shape
  if center_crop is not None:
    if center_crop > min(h, w):
      raise UserError(f'config.data.center_crop={center_crop} is larger than the {h}x{w} images '
                      f"of '{name}': set it to at most {min(h, w)}, or to None for no crop.")
    h = w = center_crop
  if image_size is not None:
    h = w = image_size
  return h, w, check_channels(channels) or c


# ITU-R BT.601 luma weights, the ones PIL's convert('L') and most digit pipelines use.
_LUMA = np.array([0.299, 0.587, 0.114])


def convert_channels(image_hwc: np.ndarray, channels: int | None) -> np.ndarray:
  """The uint8 image with `channels` channels: 1 = luminance of RGB (0.299 R + 0.587 G +
  0.114 B, rounded), 3 = a gray channel repeated; alpha is dropped. None leaves it as it is."""
  channels = check_channels(channels)
  c = image_hwc.shape[-1]
  if channels is None or c == channels:
    return image_hwc
  if image_hwc.dtype != np.uint8:
    raise UserError(f'config.data.channels converts uint8 images only, got {image_hwc.dtype}: '
                    'set config.data.channels to None for this data set.')
  if channels == 3:
    return image_hwc[..., :3] if c == 4 else np.repeat(image_hwc[..., :1], 3, axis=-1)
  if c < 3:  # gray with alpha
    return image_hwc[..., :1]
  luma = np.clip(np.round(image_hwc[..., :3] @ _LUMA), 0, 255)
  return luma.astype(np.uint8)[..., None]


def crop_and_resize(image_hwc: np.ndarray, center_crop: int | None = None,
                    image_size: int | None = None) -> np.ndarray:
  """Centered square crop of side `center_crop`, then a resize to `image_size` squared.

  The DCGAN CelebA preprocessing of carpedm20/DCGAN-tensorflow (utils.center_crop: crop 108,
  then resize to 64); CelebA cropped to 140 is the other common choice. (The PyTorch DCGAN
  example instead resizes the shorter side to 64, then crops 64: about center_crop=178,
  image_size=64 here.) The crop's top-left corner is
  (round((H - c) / 2), round((W - c) / 2)) with Python's round, the formula of both that code
  and torchvision's CenterCrop: CelebA's 218x178 gives (39, 19) for c = 140, (55, 35) for 108.
  The resize is PIL's antialiased bicubic (`_RESAMPLE`) on uint8 per channel, so values stay
  in 0..255 and a constant image stays constant. Without a crop, a non-square image is
  squashed to the square. None leaves a step out; both None returns the input unchanged.
  """
  return _crop_and_resize(image_hwc, check_size(center_crop, 'center_crop'),
                          processed_shape(image_hwc.shape, center_crop, image_size))


def _crop_and_resize(image_hwc, center_crop, out_shape):
  """crop_and_resize with the sizes already checked (the per-image path of load_split)."""
  h, w, c = image_hwc.shape
  out_h, out_w, _ = out_shape
  if center_crop is not None:
    top, left = int(round((h - center_crop) / 2)), int(round((w - center_crop) / 2))
    image_hwc = image_hwc[top:top + center_crop, left:left + center_crop]
  if image_hwc.shape[:2] == (out_h, out_w):
    return image_hwc
  if image_hwc.dtype != np.uint8:
    raise UserError(f'config.data.image_size resizes uint8 images only, got {image_hwc.dtype}: '
                    'set config.data.image_size to None for this data set.')
  if c == 3:  # One call for RGB; RGBA is done per channel (PIL would premultiply alpha).
    return np.asarray(Image.fromarray(image_hwc).resize((out_w, out_h), _RESAMPLE))
  return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image_hwc[..., k]))
                              .resize((out_w, out_h), _RESAMPLE)) for k in range(c)], axis=-1)


def split_info(name: str, split: str, data_dir: str | None, *, center_crop: int | None = None,
               image_size: int | None = None, channels: int | None = None):
  """(image_shape, num_classes, num_examples) of a split without decoding its pixels.

  image_shape is the shape after crop_and_resize and convert_channels; only a data set whose
  feature has no fixed (H, W) has its first image decoded, to learn the shape. An image folder
  has one class and the shape of its first image.
  """
  check_size(center_crop, 'center_crop')
  check_size(image_size, 'image_size')
  check_channels(channels)
  if folders.is_folder(name):
    paths = folders.image_files(name, split)
    shape = folders.read_image(paths[0]).shape
    return processed_shape(shape, center_crop, image_size, name, channels), 1, len(paths)
  source = open_split(name, split, data_dir)
  features = _features(source)
  shape = tuple(features['image'].shape)
  if None in shape:
    shape = tuple(np.asarray(read_example(source, 0)['image']).shape)
  num_classes = features['label'].num_classes if 'label' in features else 0
  return (processed_shape(shape, center_crop, image_size, name, channels), num_classes,
          len(source))


def iter_chunks(source, chunk_size: int = _READ_CHUNK) -> Iterator[tuple[int, list]]:
  """Yields (start, examples[start:start + chunk_size]) over the whole data source, in order.

  Reads through the batched `__getitems__` where the source has it (array_record fetches a
  chunk's records in one parallel read, which matters where each read has latency, e.g. a
  network file system) and falls back to one `source[i]` per example for good when it fails
  (TFDS's mock_data breaks `__getitems__`; a genuine read error is then raised per item, by
  read_example, as a UserError naming the damaged file).
  """
  batched = callable(getattr(source, '__getitems__', None))
  for start in range(0, len(source), chunk_size):
    keys = list(range(start, min(len(source), start + chunk_size)))
    examples = None
    if batched:
      try:
        examples = list(source.__getitems__(keys))
        if len(examples) != len(keys):
          raise IndexError(f'__getitems__ returned {len(examples)} of {len(keys)} examples')
      except Exception as e:  # pylint: disable=broad-except
        logging.info('Batched read failed (%s: %s); reading one example at a time.',
                     type(e).__name__, e)
        batched, examples = False, None
    if examples is None:
      examples = [read_example(source, i) for i in keys]
    yield start, examples


def load_split(name: str, split: str, data_dir: str | None, *, center_crop: int | None = None,
               image_size: int | None = None, channels: int | None = None) -> Split:
  """The whole split as arrays, decoded once per process (file order, not shuffled).

  Each image goes through crop_and_resize(center_crop, image_size) and then
  convert_channels(channels) as it is decoded, so only the processed images are ever held; the
  cache key includes all three. A data set without a 'label' feature (e.g. celeb_a) and an
  image folder (`folder:PATH`) get all-zero labels.
  """
  pre = (check_size(center_crop, 'center_crop'), check_size(image_size, 'image_size'),
         check_channels(channels))
  key = (name, split, resolve_data_dir(data_dir), *pre)
  if key not in _SPLITS:
    load = _load_folder if folders.is_folder(name) else _load_tfds
    _SPLITS[key] = load(name, split, data_dir, *pre)
  return _SPLITS[key]


def _process(image, name, center_crop, image_size, channels) -> np.ndarray:
  """One decoded image through crop_and_resize and convert_channels (sizes already checked)."""
  if center_crop is not None or image_size is not None or channels is not None:
    if image.ndim != 3:
      raise UserError(f"Data set '{name}' has images of shape {image.shape}, not (H, W, C): "
                      'set config.data.center_crop, image_size and channels to None.')
    image = _crop_and_resize(
        image, center_crop, processed_shape(image.shape, center_crop, image_size, name))
    image = convert_channels(image, channels)
  return image


def _load_tfds(name, split, data_dir, center_crop, image_size, channels) -> Split:
  source = open_split(name, split, data_dir)
  has_label = 'label' in _features(source)
  n = len(source)
  verbose = n > _LOG_ABOVE
  if verbose:
    log.info(f'decoding {n} examples of {name}[{split}] (center_crop={center_crop}, '
             f'image_size={image_size}, channels={channels}), once per run.')
  images, labels = None, np.zeros((n,), np.int32)
  t0, next_log = time.perf_counter(), n // 10
  for start, examples in iter_chunks(source):
    for i, example in enumerate(examples, start):
      image = _process(np.asarray(example['image']), name, center_crop, image_size, channels)
      if images is None:
        images = np.empty((n,) + image.shape, np.uint8)
      if image.shape != images.shape[1:]:
        raise UserError(f"Data set '{name}' has images of different shapes ({image.shape} vs "
                        f'{images.shape[1:]}): genlab needs one fixed image shape; set '
                        'config.data.center_crop and/or config.data.image_size.')
      images[i] = image
      if has_label:
        labels[i] = example['label']
    done = start + len(examples)
    if verbose and (done >= next_log or done == n):
      rate = done / max(time.perf_counter() - t0, 1e-9)
      log.info(f'decoded {done}/{n} examples of {name}[{split}] ({rate:.0f}/s, '
               f'{(n - done) / rate:.0f} s left).')
      next_log = done + n // 10
  if images is None:
    raise UserError(f"Split '{split}' of data set '{name}' is empty: pick another split.")
  return Split(images, labels)


def _load_folder(name, split, data_dir, center_crop, image_size, channels) -> Split:
  """A split of `folder:PATH`: its images in file-name order, each checked against the first
  so that a mixed folder names the two files and the key that makes them agree."""
  del data_dir  # The path is in the name.
  paths = folders.image_files(name, split)
  if len(paths) > _LOG_ABOVE:
    log.info(f'decoding {len(paths)} images of {name}/{split}, once per run.')
  images, first, first_c = None, None, None
  for i, path in enumerate(paths):
    image = folders.read_image(path)
    if first is None:
      first, first_c = path, image.shape[-1]
    elif channels is None and image.shape[-1] != first_c:
      kinds = {1: 'gray', 3: 'RGB'}
      raise UserError(f"Folder '{os.path.dirname(path)}' mixes gray and RGB images ({first} is "
                      f'{kinds[first_c]}, {path} is {kinds[image.shape[-1]]}): set its channels '
                      '(config.data.channels, or the domain\'s channels) to 1 or 3.')
    image = _process(image, name, center_crop, image_size, channels)
    if images is None:
      images = np.empty((len(paths),) + image.shape, np.uint8)
    if image.shape != images.shape[1:]:
      raise UserError(f"Folder '{os.path.dirname(path)}' has images of different sizes ({first} "
                      f'is {images.shape[2]}x{images.shape[1]}, {path} is {image.shape[1]}x'
                      f'{image.shape[0]}): set image_size (config.data.image_size, or the '
                      "domain's image_size), e.g. 256.")
    images[i] = image
  return Split(images, np.zeros((len(paths),), np.int32))


def bernoulli(rng: np.random.Generator, images_u8: np.ndarray) -> np.ndarray:
  """0/1 uint8 with P(1) = intensity/255: u < x/255 (x = 255 is always 1, x = 0 never)."""
  return (rng.random(images_u8.shape, dtype=np.float32) < images_u8 / np.float32(255)).astype(
      np.uint8)


def fixed_binary(name: str, split: str, data_dir: str | None, *,
                 center_crop: int | None = None, image_size: int | None = None,
                 channels: int | None = None) -> np.ndarray:
  """The split binarized once, pixel ~ Bernoulli(intensity), with a seed fixed per split.

  Used for eval/test under 'dynamic' (so the eval set is the same every time) and for every
  split under 'static'. The noise depends only on (name, split, row), never on the run; it
  binarizes the images after crop_and_resize(center_crop, image_size) and channels.
  """
  center_crop = check_size(center_crop, 'center_crop')
  image_size = check_size(image_size, 'image_size')
  channels = check_channels(channels)
  key = (name, split, resolve_data_dir(data_dir), center_crop, image_size, channels)
  if key not in _FIXED_BINARY:
    images = load_split(name, split, data_dir, center_crop=center_crop,
                        image_size=image_size, channels=channels).images
    tag = zlib.crc32(f'{name}|{split}'.encode())
    out = np.empty_like(images)
    for start in range(0, len(images), _CHUNK):
      rows = images[start:start + _CHUNK]
      rng = np.random.default_rng([_STATIC_SEED, tag, start // _CHUNK])
      out[start:start + _CHUNK] = bernoulli(rng, rows)
    _FIXED_BINARY[key] = out
  return _FIXED_BINARY[key]
