"""Tests for genlab/metrics/cas.py and the 'cas' sample metric: real digits of the drawn classes
score high, digits of other classes near chance, the real-vs-real row, bad input, a run."""
import importlib
import json
import os

import numpy as np
import pytest

from conftest import run_cli
from genlab import data
from genlab.errors import UserError
from genlab.metrics import cas
from genlab.metrics import sample_metrics
from genlab.pretrained import digit_classifier


def _config(name='cgan_mnist', **overrides):
  c = importlib.import_module(f'configs.{name}').get_config('smoke')
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('cas',)
  c.eval.cas_samples = 2000
  c.update_from_flattened_dict(overrides)
  return c


@pytest.fixture(scope='module')
def metrics(data_dir):
  del data_dir  # the session's TFDS dir, where mnist5k is prepared
  c = _config()
  m = sample_metrics.SampleMetrics(c, data.get_info(c))
  # The smoke recipe's 30 steps reach ~0.3 on real digits, too near chance to tell a good
  # generator from a bad one; 300 reach ~0.9 in a few seconds.
  m.cas_recipe.num_train_steps = 300
  return m


def _of_classes(metrics, classes):
  """Real training digits, row i of class classes[i]."""
  images, labels = metrics.real_images('train'), metrics.real_labels('train')
  rows = {k: iter(np.flatnonzero(labels == k)) for k in range(10)}
  return images[[next(rows[k]) for k in classes]]


def test_real_digits_of_the_drawn_classes_score_high(metrics):
  """A perfect conditional generator: row i is a real digit of class i % 10."""
  out = metrics.evaluate(lambda n: _of_classes(metrics, np.arange(n) % 10), 'test')
  assert set(out) == {'cas'}
  assert out['cas'] > 0.75, out


def test_digits_of_random_classes_score_near_chance(metrics):
  """Real digits, but each of a random class rather than the one asked for."""
  classes = np.random.default_rng(0).integers(0, 10, 2000)
  out = metrics.evaluate(lambda n: _of_classes(metrics, classes[:n]), 'test')
  assert out['cas'] < 0.2, out


def test_real_vs_real_row_is_cas_of_the_real_training_digits(metrics):
  ref = metrics.reference()
  assert set(ref) == {'cas'}
  assert ref['cas'] > 0.75, ref


def test_cas_needs_a_conditional_model():
  for key in ('eval.test_sample_metrics', 'eval.sample_metrics'):
    c = _config('dcgan_mnist', **{'eval.test_sample_metrics': (), key: ('cas',)})
    with pytest.raises(UserError, match='config.model.conditional is not True: use a '
                                        'conditional config'):
      sample_metrics.SampleMetrics(c, None)
  # Conditional: accepted, and at the final evaluation only (it trains a network).
  c = _config(**{'eval.sample_metrics': ('cas', 'fid')})
  m = sample_metrics.SampleMetrics(c, None)
  assert m.eval_names == ('fid',) and m.test_names == ('cas',)


def test_accuracy_is_deterministic_and_refuses_bad_input(metrics):
  recipe = digit_classifier.recipe('smoke')
  recipe.num_train_steps = 3
  x, y = metrics.real_images('train')[:64], metrics.real_labels('train')[:64]
  x_test, y_test = metrics.real_images('test'), metrics.real_labels('test')
  first = cas.accuracy(recipe, x, y, x_test, y_test, num_classes=10, seed=3)
  assert cas.accuracy(recipe, x, y, x_test, y_test, num_classes=10, seed=3) == first
  with pytest.raises(UserError, match=r'float32 in \[0, 1\]'):
    cas.accuracy(recipe, x * 255, y, x_test, y_test, num_classes=10)
  with pytest.raises(UserError, match=r'labels must be integers in \[0, 10\)'):
    cas.accuracy(recipe, x, y + 10, x_test, y_test, num_classes=10)
  with pytest.raises(UserError, match='tests on'):
    cas.accuracy(recipe, x, y, x_test[:, :14], y_test, num_classes=10)


def test_cgan_smoke_run_reports_fid_and_cas(data_dir, tmp_path):
  workdir = tmp_path / 'cgan'
  run_cli('--config', 'configs/cgan_mnist.py:smoke', '--workdir', str(workdir),
          "--config.eval.test_sample_metrics=('fid','cas')", env={'TFDS_DATA_DIR': data_dir},
          check=True)
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  for row in (results['metrics'], results['reference']['real_vs_real']):
    assert 'fid' in row and 0.0 <= row['cas'] <= 1.0, row
