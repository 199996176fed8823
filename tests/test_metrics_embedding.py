"""Tests for genlab/metrics/embedding.py: loading the digit classifier and embedding images."""
import json
import os

import jax
import numpy as np
import pytest

from genlab import data
from genlab import train
from genlab.data import source
from genlab.errors import UserError
from genlab.methods import classifier
from genlab.metrics import embedding


def smoke_config():
  from configs import classifier_mnist  # pylint: disable=g-import-not-at-top
  return classifier_mnist.get_config('smoke')


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
  """A :smoke classifier trained into a temp workdir, and 50 real validation digits."""
  workdir = str(tmp_path_factory.mktemp('classifier'))
  results = train.train_and_evaluate(smoke_config(), workdir)
  images = source.load_split('mnist5k', 'validation', None).images[:50]
  return workdir, results, images.astype(np.float32) / 255.0


def test_load_and_embed_round_trip(trained):
  workdir, results, images = trained
  emb = embedding.load_classifier(workdir)
  config = smoke_config()
  assert emb.workdir == workdir and emb.step == config.num_train_steps
  assert emb.image_shape == (28, 28, 1) and emb.num_classes == 10
  assert emb.test_accuracy == pytest.approx(results['metrics']['accuracy'])
  features, probs = emb.embed(images)
  assert features.shape == (50, config.model.hidden_dim) and probs.shape == (50, 10)
  assert features.dtype == np.float32 and probs.dtype == np.float32
  np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
  assert np.all(probs >= 0) and np.all(features >= 0)
  assert features.std(0).max() > 0                   # not a constant embedding
  again_f, again_p = emb.embed(images)
  np.testing.assert_array_equal(again_f, features)
  np.testing.assert_array_equal(again_p, probs)
  # The same numbers as the trained network applied directly to the restored state.
  _, state, _ = train.restore(config, workdir)
  model = classifier.build_model(config, data.get_info(config))
  direct_f, direct_logits = classifier.features_fn(model)(state, images)
  np.testing.assert_allclose(features, direct_f, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(probs, jax.nn.softmax(direct_logits), rtol=1e-5, atol=1e-6)


def test_chunking_and_padding_do_not_change_results(trained):
  workdir, _, images = trained
  whole_f, whole_p = embedding.load_classifier(workdir, chunk_size=64).embed(images)
  emb = embedding.load_classifier(workdir, chunk_size=7)     # 50 = 7 * 7 + 1: padded
  f, p = emb.embed(images)
  np.testing.assert_allclose(f, whole_f, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(p, whole_p, rtol=1e-5, atol=1e-6)
  one_f, one_p = emb.embed(images[3:4])                      # a single image: padded to 7
  np.testing.assert_allclose(one_f, whole_f[3:4], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(one_p, whole_p[3:4], rtol=1e-5, atol=1e-6)
  none_f, none_p = emb.embed(images[:0])
  assert none_f.shape == (0, whole_f.shape[1]) and none_p.shape == (0, 10)


def test_bad_images_are_user_errors(trained):
  workdir, _, images = trained
  emb = embedding.load_classifier(workdir)
  with pytest.raises(UserError, match=r'\(50, 27, 28, 1\).*\(N, 28, 28, 1\)'):
    emb.embed(images[:, :27])
  with pytest.raises(UserError, match=r'\(28, 28\).*\(N, 28, 28, 1\)'):
    emb.embed(images[0, ..., 0])
  with pytest.raises(UserError, match=r'in \[0, 1\]'):
    emb.embed(images * 255.0)


def test_missing_workdir_names_the_training_command(tmp_path):
  workdir = str(tmp_path / 'nothing_here')
  command = f'python run.py --config configs/classifier_mnist.py --workdir {workdir}'
  with pytest.raises(UserError, match='does not exist') as e:
    embedding.load_classifier(workdir)
  assert command in str(e.value) and '\n' not in str(e.value)
  os.makedirs(workdir)
  with pytest.raises(UserError, match='has no config.json'):
    embedding.load_classifier(workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(smoke_config().to_dict(), f)
  with pytest.raises(UserError, match='has no checkpoint') as e:
    embedding.load_classifier(workdir)
  assert command in str(e.value)


def test_a_run_of_another_method_is_refused(tmp_path):
  workdir = str(tmp_path / 'vae_run')
  os.makedirs(os.path.join(workdir, 'checkpoints', '10'))
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump({'method': 'vae'}, f)
  with pytest.raises(UserError, match="'vae' run, not a classifier"):
    embedding.load_classifier(workdir)


def test_ensure_classifier_trains_when_missing_then_reuses(data_dir, tmp_path):
  workdir = str(tmp_path / 'ensured')
  emb = embedding.ensure_classifier(workdir, 'smoke')
  assert emb.step == smoke_config().num_train_steps and emb.test_accuracy is not None
  assert os.path.exists(os.path.join(workdir, 'results.json'))
  metrics_log = open(os.path.join(workdir, 'metrics.jsonl')).read()
  features, probs = emb.embed(np.zeros((3, 28, 28, 1), np.float32))
  assert features.shape[0] == probs.shape[0] == 3
  # A second call finds the finished run and loads it without training again.
  again = embedding.ensure_classifier(workdir, 'smoke')
  assert open(os.path.join(workdir, 'metrics.jsonl')).read() == metrics_log
  np.testing.assert_array_equal(again.embed(np.zeros((3, 28, 28, 1), np.float32))[1], probs)


def test_default_classifier_lives_in_the_genlab_cache_whatever_the_working_folder(
    tmp_path, monkeypatch):
  monkeypatch.setenv('GENLAB_CACHE', str(tmp_path / 'cache'))
  monkeypatch.chdir(tmp_path)
  assert embedding.default_workdir() == str(tmp_path / 'cache' / 'pretrained' /
                                            'classifier_mnist')
  monkeypatch.chdir('/')
  assert embedding.default_workdir('smoke') == str(tmp_path / 'cache' / 'pretrained' /
                                                   'classifier_mnist-smoke')
