"""The digit classifier that sample-quality metrics embed images with (Inception's role).

FID (Heusel et al. 2017), the classifier score (Salimans et al. 2016) and precision/recall
(Kynkaanniemi et al. 2019) compare real and generated images in the feature space of a
classifier trained on real data. For digits genlab trains its own (configs/classifier_mnist.py,
genlab/methods/classifier.py); this module loads such a run directory back:

  emb = embedding.load_classifier('runs/classifier_mnist')    # or ensure_classifier(...)
  features_NxF, probs_NxK = emb.embed(images_NxHxWxC)         # float32 in [0, 1]

`embed` runs one jitted function over fixed-size chunks (the last one zero-padded), so any
number of images compiles once and gives the same rows whatever the chunking.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import Optional

import jax
import ml_collections
import numpy as np

from genlab import log
from genlab import packages
from genlab import train
from genlab.errors import UserError
from genlab.methods import classifier as classifier_method

CONFIG_FILE = 'configs/classifier_mnist.py'
# Values outside [0, 1] by more than this are a caller's mistake (e.g. 0..255 or [-1, 1]).
_RANGE_TOLERANCE = 1e-3


def default_workdir(config_arg: Optional[str] = None) -> str:
  """Where the classifier of configs/classifier_mnist.py[:config_arg] is trained and found by
  default: the genlab cache, so that runs started from any folder share it."""
  suffix = '-' + re.sub(r'[^A-Za-z0-9_.=-]', '_', config_arg) if config_arg else ''
  return os.fspath(packages.cache_dir('pretrained', f'classifier_mnist{suffix}'))


def train_command(workdir: str) -> str:
  return f'python run.py --config {CONFIG_FILE} --workdir {workdir}'


class Embedding:
  """A trained classifier restored from its run directory, ready to embed images."""

  def __init__(self, workdir: str, config: ml_collections.ConfigDict, run, state,
               chunk_size: int = 500):
    self.workdir = workdir
    self.config = config
    self.image_shape = tuple(int(d) for d in run.data_info.image_shape)
    self.num_classes = int(run.data_info.num_classes)
    self.step = int(np.asarray(jax.device_get(state.step)))
    self.chunk_size = int(chunk_size)
    self.test_accuracy = _test_accuracy(workdir)
    self._state = state
    model = classifier_method.build_model(config, run.data_info)
    features = classifier_method.features_fn(model)

    def fn(state, x_NxHxWxC):
      features_NxF, logits_NxK = features(state, x_NxHxWxC)
      return features_NxF, jax.nn.softmax(logits_NxK, axis=-1)

    self._embed_chunk = jax.jit(fn)

  @property
  def feature_dim(self) -> int:
    return int(self.config.model.get('hidden_dim', 128))

  def embed(self, images_NxHxWxC) -> tuple[np.ndarray, np.ndarray]:
    """-> (features_NxF, probs_NxK), float32 numpy: penultimate layer and softmax, eval mode."""
    x = np.asarray(images_NxHxWxC)
    if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
      raise UserError(
          f'Images of shape {tuple(x.shape)} cannot be embedded by the classifier in '
          f'{self.workdir}, which takes (N, {", ".join(map(str, self.image_shape))}) images: '
          'give images of that shape.')
    x = x.astype(np.float32)
    if x.size and (not np.all(np.isfinite(x)) or x.min() < -_RANGE_TOLERANCE
                   or x.max() > 1 + _RANGE_TOLERANCE):
      raise UserError(
          f'Images to embed must be float32 in [0, 1], got values in [{np.nanmin(x):g}, '
          f'{np.nanmax(x):g}]{" with NaN/inf" if not np.all(np.isfinite(x)) else ""}: rescale '
          'them (e.g. divide uint8 by 255, map [-1, 1] with (x + 1) / 2).')
    n, c = len(x), self.chunk_size
    features, probs = [], []
    for start in range(0, n, c):
      chunk = x[start:start + c]
      real = len(chunk)
      if real < c:   # One compiled shape: pad the last chunk with zeros, drop those rows.
        chunk = np.concatenate([chunk, np.zeros((c - real, *self.image_shape), np.float32)])
      f, p = jax.device_get(self._embed_chunk(self._state, chunk))
      features.append(np.asarray(f[:real], np.float32))
      probs.append(np.asarray(p[:real], np.float32))
    if not features:
      return (np.zeros((0, self.feature_dim), np.float32),
              np.zeros((0, self.num_classes), np.float32))
    return np.concatenate(features), np.concatenate(probs)


def _test_accuracy(workdir: str) -> Optional[float]:
  path = os.path.join(workdir, 'results.json')
  try:
    with open(path) as f:
      return float(json.load(f)['metrics']['accuracy'])
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _checkpoint_steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return []
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit())


def _saved_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  try:
    with open(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (OSError, ValueError) as e:
    raise UserError(f'{path} is unreadable ({e}): retrain the classifier with '
                    f'`{train_command(workdir)}` in a new or emptied workdir.') from e
  if config.get('method') != 'classifier':
    raise UserError(f'{workdir} holds a {config.get("method")!r} run, not a classifier: give '
                    f'the workdir of `{train_command("DIR")}`.')
  return config


def _default_config(config_arg: Optional[str]) -> ml_collections.ConfigDict:
  """get_config(config_arg) of configs/classifier_mnist.py, found beside the genlab package.

  Loaded by path, so that it works from any working directory (configs/ is not a package).
  """
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  path = os.path.join(root, CONFIG_FILE)
  if not os.path.isfile(path):
    raise UserError(f'{path} is missing: ensure_classifier needs the genlab source checkout, '
                    'or train a classifier yourself and use load_classifier(workdir).')
  spec = importlib.util.spec_from_file_location('genlab_classifier_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(config_arg)


def load_classifier(workdir: str, chunk_size: int = 500) -> Embedding:
  """Restores the latest good checkpoint of the classifier run in `workdir`.

  Raises UserError when the workdir, its config.json or its checkpoints are missing, naming
  the command that trains one.
  """
  if chunk_size < 1:
    raise UserError(f'chunk_size={chunk_size}: give a positive number of images per chunk.')
  missing = None
  if not os.path.isdir(workdir):
    missing = 'does not exist'
  elif not os.path.isfile(os.path.join(workdir, 'config.json')):
    missing = 'has no config.json'
  elif not _checkpoint_steps(workdir):
    missing = 'has no checkpoint'
  if missing:
    raise UserError(f'No trained digit classifier: {workdir} {missing}. Train it with '
                    f'`{train_command(workdir)}` (a few minutes on a CPU).')
  config = _saved_config(workdir)
  run, state, _ = train.restore(config, workdir)
  return Embedding(workdir, config, run, state, chunk_size)


def ensure_classifier(workdir: str, config_arg: Optional[str] = None,
                      chunk_size: int = 500, data_dir: Optional[str] = None) -> Embedding:
  """load_classifier, after training configs/classifier_mnist.py into `workdir` if needed.

  Trains when the workdir has no checkpoint, or has one but no results.json (an interrupted
  run, which then resumes to its end). A workdir with its own config.json keeps that config;
  otherwise get_config(config_arg) of configs/classifier_mnist.py is used, reading its data
  from `data_dir` (the calling run's config.data_dir) when given.
  """
  finished = bool(_checkpoint_steps(workdir)) and os.path.isfile(
      os.path.join(workdir, 'results.json'))
  if not finished:
    if os.path.isfile(os.path.join(workdir, 'config.json')):
      config = _saved_config(workdir)
    else:
      config = _default_config(config_arg)
      if data_dir:
        config.data_dir = data_dir
    log.info(f'no trained digit classifier in {workdir}: training one now ({CONFIG_FILE}'
             f'{":" + config_arg if config_arg else ""}; a few minutes on a CPU).')
    train.train_and_evaluate(config, workdir)
  return load_classifier(workdir, chunk_size)
