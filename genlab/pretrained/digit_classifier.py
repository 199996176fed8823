"""The digit classifier that sample-quality metrics embed images with (Inception's role).

FID (Heusel et al. 2017), the classifier score (Salimans et al. 2016) and precision/recall
(Kynkaanniemi et al. 2019) compare real and generated images in the feature space of a
classifier trained on real data. For digits genlab trains its own: configs/classifier_mnist.py
(genlab/methods/classifier.py), once, into the genlab cache. To the rest of genlab it is a
pretrained network like VGG16:

  clf = digit_classifier.load()                         # or load('smoke'), load(workdir=DIR)
  features_NxF, probs_NxK = clf.embed(images_NxHxWxC)   # numpy, float32 in [0, 1]
  logits_NxK = clf.logits(clf.params, x_NxHxWxC)        # pure: inside jax.jit / jax.grad
  config = digit_classifier.recipe('smoke')             # its config, to train it on other data

On first use `load` trains it with `run.py` in a subprocess (metrics never import the trainer)
and exports the trained parameters once, as DIR/classifier.npz (flat 'a/b/c' keys) with the
model config and test accuracy in DIR/classifier.json, read back by a second subprocess with
genlab.checkpoint; every later load reads only those two files. Both subprocesses run from the
checkout root with this interpreter, single-process (a multi-process run's variables removed)
and without GPU memory preallocation, so they fit beside the run that needs them; runs that
start together wait on DIR/classifier.lock and then load what the first one made.

`embed` runs one jitted function over fixed-size chunks (the last one zero-padded), so any
number of images compiles once and gives the same rows whatever the chunking.

  python -m genlab.pretrained.digit_classifier export DIR   # the export of a run in DIR
"""
from __future__ import annotations

import codecs
import contextlib
import fcntl
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import types
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from genlab import files
from genlab import log
from genlab import packages
from genlab.errors import UserError
from genlab.methods import classifier as classifier_method
from genlab.pretrained import weight_files

CONFIG_FILE = os.path.join('configs', 'classifier_mnist.py')
WEIGHTS_FILE = 'classifier.npz'
INFO_FILE = 'classifier.json'
_LOCK_FILE = 'classifier.lock'
_FORMAT = 1
# Values outside [0, 1] by more than this are a caller's mistake (e.g. 0..255 or [-1, 1]).
_RANGE_TOLERANCE = 1e-3
# A multi-process run's variables (genlab/parallel.py): the subprocesses train on their own.
_DISTRIBUTED_ENV = ('GENLAB_COORDINATOR', 'GENLAB_NUM_PROCESSES', 'GENLAB_PROCESS_ID')


def default_workdir(config_arg: Optional[str] = None) -> str:
  """Where the classifier of configs/classifier_mnist.py[:config_arg] is trained and found by
  default: the genlab cache, so that runs started from any folder share it."""
  suffix = '-' + re.sub(r'[^A-Za-z0-9_.=-]', '_', config_arg) if config_arg else ''
  return os.fspath(packages.cache_dir('pretrained', f'classifier_mnist{suffix}'))


class DigitClassifier:
  """The trained convnet (genlab/models/classifier.py) and its parameters, in eval mode."""

  def __init__(self, model, params: dict, *, image_shape, num_classes: int,
               test_accuracy: Optional[float], workdir: str, step: Optional[int] = None):
    self.params = params
    self.image_shape = tuple(int(d) for d in image_shape)
    self.num_classes = int(num_classes)
    self.test_accuracy = test_accuracy
    self.workdir = workdir
    self.step = step
    self.feature_dim = int(model.hidden_dim)
    self._model = model

    def probs(params, x_NxHxWxC):
      features_NxF, logits_NxK = self.features(params, x_NxHxWxC)
      return features_NxF, jax.nn.softmax(logits_NxK, axis=-1)

    self._embed_chunk = jax.jit(probs)

  def features(self, params, x_NxHxWxC) -> tuple[jax.Array, jax.Array]:
    """-> (features_NxF, logits_NxK): the penultimate layer (FID's features) and the logits."""
    return self._model.apply({'params': params}, x_NxHxWxC, False, method=self._model.features)

  def logits(self, params, x_NxHxWxC) -> jax.Array:
    """-> logits_NxK; pure and differentiable in both arguments (x float32 in [0, 1])."""
    return self.features(params, x_NxHxWxC)[1]

  def embed(self, images_NxHxWxC, chunk_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """-> (features_NxF, probs_NxK), float32 numpy: penultimate layer and softmax."""
    if chunk_size < 1:
      raise UserError(f'chunk_size={chunk_size}: give a positive number of images per chunk.')
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
    n, c = len(x), int(chunk_size)
    features, probs = [], []
    for start in range(0, n, c):
      chunk = x[start:start + c]
      real = len(chunk)
      if real < c:   # One compiled shape: pad the last chunk with zeros, drop those rows.
        chunk = np.concatenate([chunk, np.zeros((c - real, *self.image_shape), np.float32)])
      f, p = jax.device_get(self._embed_chunk(self.params, chunk))
      features.append(np.asarray(f[:real], np.float32))
      probs.append(np.asarray(p[:real], np.float32))
    if not features:
      return (np.zeros((0, self.feature_dim), np.float32),
              np.zeros((0, self.num_classes), np.float32))
    return np.concatenate(features), np.concatenate(probs)


def load(config_arg: Optional[str] = None, *, workdir: Optional[str] = None,
         data_dir: Optional[str] = None) -> DigitClassifier:
  """The classifier exported in `workdir` (default: default_workdir(config_arg)), after training
  configs/classifier_mnist.py[:config_arg] there and exporting it, where that is still needed.

  Trains when the workdir has no finished run (no checkpoint or no results.json: an interrupted
  run resumes to its end), reading the data from `data_dir` (the calling run's
  config.data_dir) when given. A finished run in `workdir` (any classifier config) is exported
  as it is; it is exported again when it has since been trained further.
  """
  workdir = os.path.abspath(workdir or default_workdir(config_arg))
  if not _exported(workdir):
    with _exclusive(workdir):
      if not _exported(workdir):   # Not made meanwhile by the process we waited for.
        _check_classifier_run(workdir)
        if not _finished(workdir):
          _train(workdir, config_arg, data_dir)
        _run(_export_command(workdir), 'Exporting the digit classifier')
  return _read_export(workdir)


# -- training and export (each in a subprocess) -------------------------------------------------
def _root() -> str:
  """The checkout that holds run.py and configs/, beside the genlab package."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  for name in ('run.py', CONFIG_FILE):
    if not os.path.isfile(os.path.join(root, name)):
      raise UserError(f'{os.path.join(root, name)} is missing: training the digit classifier '
                      'needs the genlab source checkout; run from one, or give the workdir of '
                      'a classifier trained there.')
  return root


def recipe(config_arg: Optional[str] = None) -> ml_collections.ConfigDict:
  """get_config(config_arg) of configs/classifier_mnist.py, read in this process: the network,
  optimizer, augmentation and schedule of the classifier, for what trains it on other data (the
  Classification Accuracy Score, genlab/metrics/cas.py)."""
  path = os.path.join(_root(), CONFIG_FILE)
  spec = importlib.util.spec_from_file_location('_genlab_classifier_recipe', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(config_arg or None)


def train_command(workdir: str, config_arg: Optional[str] = None,
                  data_dir: Optional[str] = None) -> list[str]:
  """The run.py command line (run from the checkout root) that trains the classifier."""
  config = os.path.join(_root(), CONFIG_FILE) + (f':{config_arg}' if config_arg else '')
  command = [sys.executable, 'run.py', '--config', config, '--workdir', workdir]
  if data_dir:
    command.append(f'--config.data_dir={os.path.abspath(data_dir)}')
  return command


def _export_command(workdir: str) -> list[str]:
  return [sys.executable, '-m', __name__, 'export', workdir]


def _train(workdir: str, config_arg: Optional[str], data_dir: Optional[str]) -> None:
  command = train_command(workdir, config_arg, data_dir)
  log.info(f'no trained digit classifier in {workdir}: training one now ({CONFIG_FILE}'
           f'{":" + config_arg if config_arg else ""}; a few minutes on a CPU).')
  _run(command, 'Training the digit classifier')


def _run(command: list[str], what: str) -> None:
  """Runs `command` from the checkout root, its output relayed to stderr as it comes; a
  failure is a UserError naming the command and the subprocess's own error line."""
  root = _root()
  env = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED_ENV}
  env.setdefault('XLA_PYTHON_CLIENT_PREALLOCATE', 'false')  # beside a run holding the GPU
  env.setdefault('PYTHONUNBUFFERED', '1')  # its lines as they are written
  shown = shlex.join(command)
  try:
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
  except OSError as e:
    raise UserError(f'{what} could not start ({e.strerror}): run `{shown}` in {root} '
                    'yourself.') from None
  try:
    error = _relay(proc.stdout)
    code = proc.wait()
  finally:
    if proc.poll() is None:   # This process is being stopped: so is its subprocess.
      proc.terminate()
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        proc.kill()
  if code != 0:
    raise UserError(f'{what} failed (exit {code}{": " + error if error else ""}); fix that and '
                    f'run again, or run `{shown}` in {root} to see its whole output.')


def _relay(stream) -> str:
  """Copies `stream` to stderr, each line prefixed, keeping the carriage returns that redraw a
  progress bar in place; -> the text of the last `genlab: error:` line."""
  decoder = codecs.getincrementaldecoder('utf-8')('replace')
  at_start, line, error = True, '', ''
  for chunk in iter(lambda: stream.read1(1 << 16), b''):
    out = []
    for part in re.split(r'([\r\n])', decoder.decode(chunk)):
      if part in ('\r', '\n'):
        if line.startswith('genlab: error:'):
          error = line[len('genlab: error:'):].strip()
        out.append(part)
        at_start, line = True, ''
      elif part:
        if at_start:
          out.append('[digit classifier] ')
        out.append(part)
        at_start, line = False, line + part
    sys.stderr.write(''.join(out))
    sys.stderr.flush()
  return error


@contextlib.contextmanager
def _exclusive(workdir: str):
  """Held while training and exporting, so that runs starting together (a parallel sweep) make
  the classifier once; the kernel releases it on any exit."""
  try:
    os.makedirs(workdir, exist_ok=True)
    f = open(os.path.join(workdir, _LOCK_FILE), 'a')
  except OSError as e:
    raise UserError(f'Cannot write the digit classifier into {workdir} ({e.strerror}): set '
                    f'{packages.CACHE_ENV} to a writable folder, or give a writable workdir '
                    '(config.eval.classifier_workdir for the sample metrics).') from None
  with f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      log.info(f'waiting for the process making the digit classifier in {workdir}.')
      fcntl.flock(f, fcntl.LOCK_EX)
    yield


def _finished(workdir: str) -> bool:
  steps = os.path.join(workdir, 'checkpoints')
  return (os.path.isfile(os.path.join(workdir, 'results.json')) and os.path.isdir(steps)
          and any(d.isdigit() for d in os.listdir(steps)))


def _check_classifier_run(workdir: str) -> None:
  config = files.read_json(os.path.join(workdir, 'config.json'))
  if isinstance(config, dict) and config.get('method') != 'classifier':
    raise UserError(f'{workdir} holds a {config.get("method")!r} run, not a classifier: give '
                    'the workdir of a classifier run (configs/classifier_mnist.py), or a new '
                    'one to train it in.')


def _exported(workdir: str) -> bool:
  """Both files are there and describe the run's final step (when the run is there too)."""
  info = files.read_json(os.path.join(workdir, INFO_FILE))
  if not isinstance(info, dict) or not os.path.isfile(os.path.join(workdir, WEIGHTS_FILE)):
    return False
  results = files.read_json(os.path.join(workdir, 'results.json'))
  return not isinstance(results, dict) or results.get('step') == info.get('step')


def export(workdir: str) -> None:
  """Writes WORKDIR/classifier.npz and classifier.json from the latest good checkpoint of the
  classifier run in `workdir` (read with genlab.checkpoint, never moving a bad step aside)."""
  from genlab import checkpoint  # pylint: disable=g-import-not-at-top  (Orbax: export only)
  from genlab import data as data_lib  # pylint: disable=g-import-not-at-top
  retrain = (f'train the classifier there first with `{shlex.join(train_command(workdir))}` '
             f'in {_root()} (or delete {workdir} if it holds a broken run).')
  saved = files.read_json(os.path.join(workdir, 'config.json'))
  if not isinstance(saved, dict):
    raise UserError(f'{workdir} has no readable config.json, so no classifier run to export: '
                    f'{retrain}')
  _check_classifier_run(workdir)
  config = ml_collections.ConfigDict(saved)
  data_info = data_lib.get_info(config)
  method = classifier_method.make(config, data_info)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                          jax.eval_shape(method.init, jax.random.key(config.seed)))
  ckpt = checkpoint.Checkpointer(workdir, read_only=True)
  try:
    restored = ckpt.restore_latest(abstract)
  finally:
    ckpt.close()
  if restored is None:
    raise UserError(f'{workdir} has no checkpoint: {retrain}')
  state, _, step = restored
  results = files.read_json(os.path.join(workdir, 'results.json')) or {}
  accuracy = (results.get('metrics') or {}).get('accuracy')
  flat = traverse_util.flatten_dict(jax.device_get(state.params), sep='/')
  weight_files.save_npz(os.path.join(workdir, WEIGHTS_FILE),
                        {k: np.asarray(v, np.float32) for k, v in flat.items()})
  files.write_json(os.path.join(workdir, INFO_FILE), {
      'format': _FORMAT, 'dataset': config.dataset, 'model': config.model.to_dict(),
      'image_shape': [int(d) for d in data_info.image_shape],
      'num_classes': int(data_info.num_classes), 'step': int(step),
      'test_accuracy': None if accuracy is None else float(accuracy)})
  log.info(f'exported the digit classifier of {workdir} (step {step}) to {WEIGHTS_FILE}.')


# -- loading (the two exported files only) -----------------------------------------------------
def _read_export(workdir: str) -> DigitClassifier:
  info_path = os.path.join(workdir, INFO_FILE)
  weights_path = os.path.join(workdir, WEIGHTS_FILE)
  remedy = (f'delete {workdir} and run again to retrain the classifier (or delete only '
            f'{WEIGHTS_FILE} and {INFO_FILE} to export them again from its checkpoint).')
  info = files.read_json(info_path)
  try:
    if info['format'] != _FORMAT:
      raise ValueError(f'format {info["format"]}, not {_FORMAT}')
    image_shape = tuple(int(d) for d in info['image_shape'])
    data_info = types.SimpleNamespace(name=info['dataset'], image_shape=image_shape,
                                      num_classes=int(info['num_classes']))
    model = classifier_method.build_model(
        ml_collections.ConfigDict({'model': info['model']}), data_info)
    accuracy = None if info['test_accuracy'] is None else float(info['test_accuracy'])
    step = int(info['step'])
  except (TypeError, KeyError, ValueError) as e:
    raise UserError(f'{info_path} is not a digit classifier description ({type(e).__name__}: '
                    f'{e}): {remedy}') from None
  try:
    with np.load(weights_path, allow_pickle=False) as f:
      flat = {k: f[k] for k in f.files}
  except Exception as e:  # pylint: disable=broad-except  (any damage to the bytes)
    raise UserError(f'{weights_path} is not a readable weights file ({type(e).__name__}): '
                    f'{remedy}') from None
  x = jnp.zeros((1, *image_shape), jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), x, False)['params'])
  expected = {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes, sep='/').items()}
  weight_files.check_shapes(flat, expected, weights_path, f'the classifier of {info_path}',
                            remedy, extra_ok=False)
  params = jax.device_put(traverse_util.unflatten_dict(
      {k: np.asarray(v, np.float32) for k, v in flat.items()}, sep='/'))
  return DigitClassifier(model, params, image_shape=image_shape,
                         num_classes=data_info.num_classes, test_accuracy=accuracy,
                         workdir=workdir, step=step)


def _main(argv):
  if len(argv) != 3 or argv[1] != 'export':
    raise UserError('Usage: python -m genlab.pretrained.digit_classifier export DIR (DIR: the '
                    'workdir of a finished configs/classifier_mnist.py run).')
  export(os.path.abspath(argv[2]))


if __name__ == '__main__':
  from genlab import cli  # pylint: disable=g-import-not-at-top
  cli.run_main(_main)
