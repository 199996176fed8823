"""Tests for genlab/methods/classifier.py and genlab/models/classifier.py."""
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from genlab import sampling
from genlab import train
from genlab.errors import UserError
from genlab.methods import classifier
from genlab.models import classifier as classifier_models

IMAGE_SHAPE = (12, 12, 1)


@dataclasses.dataclass(frozen=True)
class FakeDataInfo:   # stands in for genlab.data.DataInfo
  name: str = 'fake'
  image_shape: tuple = IMAGE_SHAPE
  num_classes: int = 3
  num_examples: dict = dataclasses.field(default_factory=lambda: {'train': 64})


def tiny_config(**overrides):
  c = ml_collections.ConfigDict()
  c.method, c.seed, c.num_train_steps = 'classifier', 0, 50
  c.model = dict(stage_features=(4, 8), convs_per_stage=1, hidden_dim=16, dropout_rate=0.5)
  c.optimizer = dict(name='adamw', learning_rate=3e-3, weight_decay=1e-4, schedule='constant')
  c.loss = dict(label_smoothing=0.0)
  c.augment = dict(max_shift=2)
  c.viz = dict(num_misclassified=4)
  for key, value in overrides.items():
    section, name = key.split('.')
    c[section][name] = value
  return c


def random_batch(n=8, seed=0):
  rng = np.random.RandomState(seed)
  return {'image': rng.rand(n, *IMAGE_SHAPE).astype(np.float32),
          'label': rng.randint(3, size=n).astype(np.int32)}


@pytest.mark.parametrize('num_classes', [0, 1])
def test_data_without_labels_is_a_user_error(num_classes):
  with pytest.raises(UserError, match='labelled data set'):
    classifier.make(tiny_config(), FakeDataInfo(num_classes=num_classes))


def test_bad_model_config_is_a_user_error():
  with pytest.raises(UserError, match='model.dropout_rate'):
    classifier.make(tiny_config(**{'model.dropout_rate': 1.0}), FakeDataInfo())
  with pytest.raises(UserError, match='fewer stages'):   # 12 -> 6 -> 3 -> 1 -> 0
    classifier.make(tiny_config(**{'model.stage_features': (4, 4, 4, 4)}), FakeDataInfo())


def test_model_shapes_and_features_are_the_penultimate_layer():
  model = classifier_models.ConvClassifier(num_classes=5, stage_features=(4, 8),
                                           hidden_dim=16, dropout_rate=0.5)
  x = jnp.asarray(random_batch(3)['image'])
  params = model.init(jax.random.key(0), x, False)['params']
  features_BxF, logits_BxK = model.apply({'params': params}, x, method=model.features)
  assert features_BxF.shape == (3, 16) and logits_BxK.shape == (3, 5)
  assert float(features_BxF.min()) >= 0.0                       # after the ReLU
  # The logits are the last Dense layer applied to the features (eval mode: no dropout).
  head = params['logits']
  np.testing.assert_allclose(logits_BxK, features_BxF @ head['kernel'] + head['bias'],
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(model.apply({'params': params}, x, False), logits_BxK)
  # Dropout is on only in training, and then follows the dropout key.
  def train_logits(k):
    return model.apply({'params': params}, x, True, rngs={'dropout': k})

  np.testing.assert_array_equal(train_logits(jax.random.key(1)), train_logits(jax.random.key(1)))
  assert not np.allclose(train_logits(jax.random.key(1)), logits_BxK)


def test_max_pool_matches_flax():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))
  np.testing.assert_array_equal(classifier_models.max_pool_2x2(x),
                                nn.max_pool(x, (2, 2), strides=(2, 2)))


def test_augmentation_keeps_shapes_and_is_a_function_of_the_key():
  x = jnp.asarray(random_batch(16)['image'])
  out = classifier.random_translate(jax.random.key(0), x, 2)
  assert out.shape == x.shape and out.dtype == x.dtype
  np.testing.assert_array_equal(out, classifier.random_translate(jax.random.key(0), x, 2))
  assert not np.array_equal(out, classifier.random_translate(jax.random.key(1), x, 2))
  np.testing.assert_array_equal(classifier.random_translate(jax.random.key(0), x, 0), x)


def test_augmentation_translates_by_at_most_max_shift():
  # One bright pixel in the middle of each image: it must move by (dy, dx) in [-2, 2]^2 and
  # stay whole, and over many images every one of the 25 shifts must occur.
  x = np.zeros((400, *IMAGE_SHAPE), np.float32)
  x[:, 6, 5, 0] = 1.0
  out = np.asarray(classifier.random_translate(jax.random.key(3), jnp.asarray(x), 2))
  np.testing.assert_array_equal(out.reshape(400, -1).sum(1), 1.0)
  rows, cols = np.nonzero(out[..., 0])[1:]
  shifts = set(zip(rows - 6, cols - 5))
  assert shifts == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}


def test_cross_entropy_with_and_without_label_smoothing():
  logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
  labels = np.array([0, 1], np.int32)
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  np.testing.assert_allclose(classifier.cross_entropy(logits, labels),
                             -log_p[[0, 1], labels], rtol=1e-6)
  e = 0.1   # targets (1 - e) one_hot + e / K (Szegedy et al. 2016, Sec. 7)
  targets = (1 - e) * np.eye(3)[labels] + e / 3
  np.testing.assert_allclose(classifier.cross_entropy(logits, labels, e),
                             -(targets * log_p).sum(1), rtol=1e-6)


def test_eval_step_sums_over_real_rows():
  config = tiny_config()
  method = classifier.make(config, FakeDataInfo())
  state = jax.jit(method.init)(jax.random.key(0))
  batch = random_batch(8)
  batch['mask'] = np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32)
  padded = dict(batch, image=batch['image'].copy())
  padded['image'][6:] = np.nan                      # padding must not leak into the sums
  sums = jax.jit(method.eval_step)(state, padded, jax.random.key(1))
  assert set(sums) == {'accuracy', 'nll'}
  # Direct computation on the 6 real rows, eval mode.
  model = classifier.build_model(config, FakeDataInfo())
  logits = np.asarray(model.apply({'params': state.params}, batch['image'][:6], False),
                      np.float64)
  labels = batch['label'][:6]
  log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
  np.testing.assert_allclose(sums['nll'], -log_p[np.arange(6), labels].sum(), rtol=1e-5)
  assert float(sums['accuracy']) == float((logits.argmax(1) == labels).sum())
  # The key does not matter: evaluation has no augmentation and no dropout.
  again = jax.jit(method.eval_step)(state, padded, jax.random.key(2))
  np.testing.assert_array_equal(again['nll'], sums['nll'])


def test_train_step_learns_a_separable_problem_and_reports_metrics():
  # Three classes = a bright square in one of three places; shifts of 2 pixels keep them apart.
  config = tiny_config()
  method = classifier.make(config, FakeDataInfo())
  rng = np.random.RandomState(0)
  labels = rng.randint(3, size=48).astype(np.int32)
  images = 0.1 * rng.rand(48, *IMAGE_SHAPE).astype(np.float32)
  for i, label in enumerate(labels):
    images[i, 4:8, 4 * label:4 * label + 3] = 1.0
  data = {'image': images, 'label': labels}
  state = jax.jit(method.init)(jax.random.key(0))
  step = jax.jit(method.train_step)
  _, twice = step(state, data, jax.random.key(5))
  history = []
  for i in range(config.num_train_steps):
    state, metrics = step(state, data, jax.random.key(i))
    history.append({k: float(v) for k, v in metrics.items()})
  assert set(history[0]) == {'loss', 'accuracy', 'grad_norm', 'learning_rate'}
  assert history[0]['learning_rate'] == pytest.approx(3e-3)
  assert history[0]['loss'] > 0.9                      # about ln 3 = 1.1 at the start
  assert np.mean([h['loss'] for h in history[-5:]]) < 0.5 * history[0]['loss']
  assert np.mean([h['accuracy'] for h in history[-5:]]) > 0.6   # augmented, dropout on
  sums = jax.jit(method.eval_step)(state, dict(data, mask=np.ones(48, np.float32)),
                                   jax.random.key(0))
  assert float(sums['accuracy']) / 48 > 0.9                          # eval mode
  # A pure function of (state, batch, key).
  _, again = step(jax.jit(method.init)(jax.random.key(0)), data, jax.random.key(5))
  assert float(again['loss']) == float(twice['loss'])


def test_visualize_shows_misclassified_digits():
  method = classifier.make(tiny_config(), FakeDataInfo())
  state = jax.jit(method.init)(jax.random.key(0))
  batch = dict(random_batch(12), mask=np.ones(12, np.float32))
  grids = method.visualize(state, jax.random.key(0), batch)
  # An untrained 3-class net misclassifies some of 12 random images; at most 4 are shown.
  assert set(grids) == {'misclassified'}
  grid = grids['misclassified']
  assert grid.shape[-1] == 1 and grid.shape[0] <= 2 * 12 + 1 and grid.shape[1] <= 2 * 12 + 1
  assert np.all(np.isfinite(grid))


@pytest.fixture(scope='module')
def smoke_run(data_dir, tmp_path_factory):
  from configs import classifier_mnist  # pylint: disable=g-import-not-at-top
  config = classifier_mnist.get_config('smoke')
  workdir = str(tmp_path_factory.mktemp('classifier_smoke'))
  return config, workdir, train.train_and_evaluate(config, workdir)


def test_smoke_training_on_mnist5k_learns(smoke_run):
  config, workdir, results = smoke_run
  assert results['step'] == config.num_train_steps
  assert config.num_train_steps <= 30 and config.batch_size == 16
  rows = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_rows = [r for r in rows if r['split'] == 'train']
  eval_rows = [r for r in rows if r['split'] == 'eval']
  assert train_rows[-1]['loss'] < train_rows[0]['loss']
  assert eval_rows[-1]['accuracy'] > eval_rows[0]['accuracy']
  assert eval_rows[-1]['nll'] < eval_rows[0]['nll']
  # 10 classes: chance is 0.1 and ln 10 = 2.30 nats.
  assert results['metrics']['accuracy'] > 0.2
  assert results['metrics']['nll'] < np.log(10)


def test_sample_mode_is_a_clear_error(smoke_run, tmp_path):
  config, workdir, _ = smoke_run
  with pytest.raises(UserError, match='does not generate samples'):
    sampling.sample(config, workdir, 4, str(tmp_path / 'samples.npz'))
  assert not os.path.exists(tmp_path / 'samples.npz')


def test_random_zoom_out_shrinks_about_the_centre():
  """scale s ~ U[min_scale, 1]: a white 28x28 frame keeps its mass in the centre, its border
  turns black when s < 1, and min_scale=1 leaves the batch as it is."""
  import jax  # pylint: disable=g-import-not-at-top
  from genlab.methods import classifier  # pylint: disable=g-import-not-at-top
  x = np.ones((16, 28, 28, 1), np.float32)
  np.testing.assert_array_equal(classifier.random_zoom_out(jax.random.key(0), x, 1.0), x)
  out = np.asarray(classifier.random_zoom_out(jax.random.key(0), x, 0.5))
  assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 + 1e-6
  areas = out.sum(axis=(1, 2, 3)) / (28 * 28)  # ~ s^2
  assert 0.25 - 0.05 < areas.min() and areas.max() < 1.0 and areas.std() > 0.01
  shrunk = out[areas < 0.8]                    # s < ~0.9: the frame's border is black
  assert len(shrunk) and np.all(shrunk[:, 0] == 0) and np.all(shrunk[:, :, 0] == 0)
  assert np.all(out[:, 14, 14] > 0.99)         # the centre is kept


def test_shape_and_stroke_augmentations_are_off_unless_asked():
  """Zero rotation, shear and stroke leave a step exactly as before they existed (a metric
  classifier trained before them trains the same); any of them on changes what it sees."""
  data = random_batch(16)

  def first_loss(**augment):
    config = tiny_config(**{f'augment.{k}': v for k, v in augment.items()})
    method = classifier.make(config, FakeDataInfo())
    state = jax.jit(method.init)(jax.random.key(0))
    return float(jax.jit(method.train_step)(state, data, jax.random.key(3))[1]['loss'])

  plain = first_loss()
  assert first_loss(max_degrees=0.0, max_shear=0.0, stroke=0.0) == plain
  for on in (dict(max_degrees=20.0), dict(max_shear=0.4), dict(stroke=0.3)):
    assert first_loss(**on) != plain, on
