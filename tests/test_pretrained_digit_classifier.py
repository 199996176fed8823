"""Tests for genlab/pretrained/digit_classifier.py: training once, exporting, loading, embedding."""
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT
from genlab import data
from genlab import train
from genlab.data import source
from genlab.errors import UserError
from genlab.methods import classifier
from genlab.pretrained import digit_classifier


def smoke_config():
  from configs import classifier_mnist  # pylint: disable=g-import-not-at-top
  return classifier_mnist.get_config('smoke')


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
  """A :smoke classifier trained and exported by `load`, and 50 real validation digits."""
  workdir = str(tmp_path_factory.mktemp('classifier') / 'classifier_mnist-smoke')
  clf = digit_classifier.load('smoke', workdir=workdir, data_dir=data_dir)
  images = source.load_split('mnist5k', 'validation', data_dir).images[:50]
  return clf, images.astype(np.float32) / 255.0


def test_load_trains_and_exports_once_then_only_reads(trained):
  clf, images = trained
  workdir = clf.workdir
  config = smoke_config()
  assert clf.step == config.num_train_steps
  assert clf.image_shape == (28, 28, 1) and clf.num_classes == 10
  results = json.load(open(os.path.join(workdir, 'results.json')))
  assert clf.test_accuracy == pytest.approx(results['metrics']['accuracy'])
  npz = os.path.join(workdir, digit_classifier.WEIGHTS_FILE)
  with np.load(npz) as f:
    assert 'embedding/kernel' in f.files and 'logits/bias' in f.files
  stamps = {name: os.stat(os.path.join(workdir, name)).st_mtime_ns
            for name in (digit_classifier.WEIGHTS_FILE, digit_classifier.INFO_FILE,
                         'metrics.jsonl')}
  again = digit_classifier.load('smoke', workdir=workdir)
  assert stamps == {name: os.stat(os.path.join(workdir, name)).st_mtime_ns for name in stamps}
  np.testing.assert_array_equal(again.embed(images)[1], clf.embed(images)[1])


def test_embed_is_the_trained_network(trained):
  clf, images = trained
  config = smoke_config()
  features, probs = clf.embed(images)
  assert features.shape == (50, config.model.hidden_dim) == (50, clf.feature_dim)
  assert probs.shape == (50, 10)
  assert features.dtype == np.float32 and probs.dtype == np.float32
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  assert np.all(probs >= 0) and np.all(features >= 0)
  assert features.std(0).max() > 0                   # not a constant embedding
  # The same numbers as the trained network applied to the checkpoint the trainer restores.
  config.data_dir = json.load(open(os.path.join(clf.workdir, 'config.json')))['data_dir']
  _, state, _ = train.restore(config, clf.workdir)
  model = classifier.build_model(config, data.get_info(config))
  direct_f, direct_logits = classifier.features_fn(model)(state, images)
  np.testing.assert_allclose(features, direct_f, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(probs, jax.nn.softmax(direct_logits), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(clf.logits(clf.params, images), direct_logits, rtol=1e-5,
                             atol=1e-5)


def test_logits_are_differentiable_inside_jit(trained):
  clf, images = trained

  def log_prob_of_3(params, x):
    return jax.nn.log_softmax(clf.logits(params, x))[:, 3].sum()

  grad_x = jax.jit(jax.grad(log_prob_of_3, argnums=1))(clf.params, jnp.asarray(images[:4]))
  assert grad_x.shape == (4, 28, 28, 1)
  assert np.all(np.isfinite(grad_x)) and np.abs(grad_x).max() > 0
  grad_params = jax.grad(log_prob_of_3)(clf.params, images[:4])
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grad_params))
  features, logits = jax.jit(clf.features)(clf.params, images[:4])
  assert features.shape == (4, clf.feature_dim) and logits.shape == (4, 10)


def test_chunking_and_padding_do_not_change_results(trained):
  clf, images = trained
  whole_f, whole_p = clf.embed(images, chunk_size=64)
  f, p = clf.embed(images, chunk_size=7)                     # 50 = 7 * 7 + 1: padded
  np.testing.assert_allclose(f, whole_f, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(p, whole_p, rtol=1e-5, atol=1e-6)
  one_f, one_p = clf.embed(images[3:4], chunk_size=7)        # a single image: padded to 7
  np.testing.assert_allclose(one_f, whole_f[3:4], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(one_p, whole_p[3:4], rtol=1e-5, atol=1e-6)
  none_f, none_p = clf.embed(images[:0])
  assert none_f.shape == (0, whole_f.shape[1]) and none_p.shape == (0, 10)


def test_bad_images_are_user_errors(trained):
  clf, images = trained
  with pytest.raises(UserError, match=r'\(50, 27, 28, 1\).*\(N, 28, 28, 1\)'):
    clf.embed(images[:, :27])
  with pytest.raises(UserError, match=r'\(28, 28\).*\(N, 28, 28, 1\)'):
    clf.embed(images[0, ..., 0])
  with pytest.raises(UserError, match=r'in \[0, 1\]'):
    clf.embed(images * 255.0)
  with pytest.raises(UserError, match='chunk_size=0'):
    clf.embed(images, chunk_size=0)


def copy_export(clf, folder):
  os.makedirs(folder)
  for name in (digit_classifier.WEIGHTS_FILE, digit_classifier.INFO_FILE):
    shutil.copy(os.path.join(clf.workdir, name), folder)
  return str(folder)


def test_the_two_exported_files_are_the_whole_network(trained, tmp_path):
  clf, images = trained
  folder = copy_export(clf, tmp_path / 'exported')          # no run, no checkpoint
  alone = digit_classifier.load(workdir=folder)
  assert alone.test_accuracy == clf.test_accuracy and alone.workdir == folder
  np.testing.assert_array_equal(alone.embed(images)[0], clf.embed(images)[0])


def test_damaged_exports_say_to_delete_and_retrain(trained, tmp_path):
  clf, _ = trained
  folder = copy_export(clf, tmp_path / 'damaged')
  npz = os.path.join(folder, digit_classifier.WEIGHTS_FILE)
  with open(npz, 'r+b') as f:
    f.truncate(100)
  with pytest.raises(UserError, match=f'{npz} is not a readable weights file') as e:
    digit_classifier.load(workdir=folder)
  assert f'delete {folder} and run again' in str(e.value) and '\n' not in str(e.value)
  with np.load(os.path.join(clf.workdir, digit_classifier.WEIGHTS_FILE)) as f:
    arrays = {k: f[k] for k in f.files}
  arrays['logits/kernel'] = arrays['logits/kernel'][:, :9]
  np.savez(npz, **arrays)
  with pytest.raises(UserError, match=r"logits/kernel: expected \(32, 10\), got \(32, 9\)"
                     ) as e:
    digit_classifier.load(workdir=folder)
  assert f'delete {folder} and run again' in str(e.value)
  with open(os.path.join(folder, digit_classifier.INFO_FILE), 'w') as f:
    json.dump({'format': 1}, f)
  with pytest.raises(UserError, match='not a digit classifier description'):
    digit_classifier.load(workdir=folder)


def test_a_run_of_another_method_is_refused(tmp_path):
  workdir = str(tmp_path / 'vae_run')
  os.makedirs(workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump({'method': 'vae'}, f)
  with pytest.raises(UserError, match="'vae' run, not a classifier"):
    digit_classifier.load(workdir=workdir)


def test_failed_training_names_the_command(data_dir, tmp_path):
  workdir = str(tmp_path / 'bad')
  with pytest.raises(UserError, match=r"exit 2: Unknown config argument 'bogus'") as e:
    digit_classifier.load('bogus', workdir=workdir, data_dir=data_dir)
  message = str(e.value)
  assert f'run.py --config {ROOT}/configs/classifier_mnist.py:bogus --workdir {workdir}' in message
  assert '\n' not in message
  assert not os.path.exists(os.path.join(workdir, digit_classifier.WEIGHTS_FILE))


def test_metrics_and_pretrained_networks_never_import_the_trainer():
  code = ('import sys; import genlab.metrics.sample_metrics, genlab.pretrained.digit_classifier; '
          "print(sorted(m for m in sys.modules if m in ('genlab.train', 'genlab.cli')))")
  out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'), check=True).stdout
  assert out.strip() == '[]'


def test_default_classifier_lives_in_the_genlab_cache_whatever_the_working_folder(
    tmp_path, monkeypatch):
  monkeypatch.setenv('GENLAB_CACHE', str(tmp_path / 'cache'))
  monkeypatch.chdir(tmp_path)
  assert digit_classifier.default_workdir() == str(tmp_path / 'cache' / 'pretrained' /
                                                   'classifier_mnist')
  monkeypatch.chdir('/')
  assert digit_classifier.default_workdir('smoke') == str(tmp_path / 'cache' / 'pretrained' /
                                                          'classifier_mnist-smoke')
