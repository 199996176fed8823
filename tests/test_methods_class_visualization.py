"""Tests for genlab/methods/class_visualization.py: the target class's probability rises (the
digit classifier and EfficientNet-Lite0), classes by index and name, the regularisers, bad
input, and exact resume with result.png, the per-class probabilities and --mode=sample."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import fetched, resume_matches
from configs import class_visualization as imagenet_config
from configs import class_visualization_mnist as mnist_config
from genlab import train
from genlab.errors import UserError
from genlab.methods import class_visualization as cv
from genlab.pretrained import digit_classifier
from genlab.pretrained import efficientnet


@pytest.fixture(scope='module')
def classifier_dir(data_dir, tmp_path_factory):
  """A :smoke digit classifier, trained and exported once for this module."""
  workdir = str(tmp_path_factory.mktemp('classifier') / 'classifier_mnist-smoke')
  digit_classifier.load('smoke', workdir=workdir, data_dir=data_dir)
  return workdir


def _mnist(classifier_dir, **overrides):
  c = mnist_config.get_config('smoke')
  c.network.classifier_workdir = classifier_dir
  c.update(overrides)
  return c


def _imagenet(**overrides):
  fetched(efficientnet.load_params)
  c = imagenet_config.get_config('smoke')
  c.update(overrides)
  return c


def _probs(run, state, classes):
  """The network's softmax probability of each image's own class, from analyze."""
  metrics, _ = run.method.analyze(state, None, None)
  return np.array([metrics[f'prob_{c}'] for c in classes]), metrics


def test_each_digits_probability_rises(classifier_dir):
  config = _mnist(classifier_dir, num_train_steps=15, jitter=1, blur=dict(every=5, sigma=0.5))
  run = train._Run(config, None)
  state = run.init_state()
  assert state.images[0].shape == (10, 28, 28, 1)
  before, _ = _probs(run, state, range(10))
  for _ in range(15):
    state, _ = run.train_step(state, {})
  after, metrics = _probs(run, state, range(10))
  assert np.all(after > before), (before, after)
  assert metrics['mean_prob'] == pytest.approx(after.mean())
  assert 0 <= metrics['top1_fraction'] <= 1   # the :smoke classifier is too weak to ask more
  ev = run.eval_step(state, {}, 0)
  assert float(ev['prob']) == pytest.approx(metrics['mean_prob'], rel=1e-4)  # unjittered
  assert run.result_images(state).shape == (10, 28, 28, 1)


@pytest.mark.slow  # ~20 s here, most of it compiling EfficientNet's two scales
def test_imagenet_class_score_rises_coarse_to_fine():
  """S_c, the objective, rises within a few steps; its softmax probability, which other
  classes' scores also move, needs the full run (configs/class_visualization.py: 0.9999)."""
  config = _imagenet(num_train_steps=6, image_size=48)   # 2 scales of 3 steps
  run = train._Run(config, None)
  state = run.init_state()
  _, before = _probs(run, state, (130,))        # the grey start, upscaled to 48 px
  for _ in range(6):
    state, metrics = run.train_step(state, {})
  assert float(metrics['scale']) == 1.0
  _, after = _probs(run, state, (130,))
  assert after['score_130'] > before['score_130'] + 1, (before, after)
  assert 0 < after['prob_130'] < 1 and after['mean_prob'] == after['prob_130']


def test_classes_by_index_and_by_name():
  labels = ['tench, Tinca tinca', 'goldfish, Carassius auratus', 'great white shark']
  cfg = ml_collections.ConfigDict(dict(classes=(2,), class_names=('Goldfish', 'tench')))
  assert cv.class_indices(cfg, labels) == [2, 1, 0]
  cfg = ml_collections.ConfigDict(dict(classes=(), class_names=('great white shark',)))
  assert cv.class_indices(cfg, labels) == [2]
  for classes, names, words in [((), ('goldfsh',), "did you mean 'goldfish'"),
                                ((3,), (), r'\[0, 3\)'), ((1,), ('goldfish',), 'twice'),
                                ((), (), 'No class to visualise')]:
    cfg = ml_collections.ConfigDict(dict(classes=classes, class_names=names))
    with pytest.raises(UserError, match=words):
      cv.class_indices(cfg, labels)


def test_imagenet_names_are_looked_up_in_the_label_list():
  labels = efficientnet.imagenet_labels()
  cfg = ml_collections.ConfigDict(dict(classes=(), class_names=('flamingo', 'goldfish',
                                                                'tarantula')))
  assert cv.class_indices(cfg, labels) == [130, 1, 76]


def test_blur_keeps_a_constant_and_the_mean_and_smooths_noise():
  x = jnp.full((2, 9, 7, 3), 0.3)
  np.testing.assert_allclose(cv.gaussian_blur(x, 1.0), x, atol=1e-6)
  noise = jax.random.uniform(jax.random.key(0), (1, 32, 32, 1))
  blurred = cv.gaussian_blur(noise, 1.0)
  assert blurred.shape == noise.shape
  assert float(blurred.std()) < 0.5 * float(noise.std())
  assert float(blurred.mean()) == pytest.approx(float(noise.mean()), abs=0.02)
  tiny = cv.gaussian_blur(jnp.ones((1, 2, 2, 1)), 2.0)      # narrower than the kernel
  np.testing.assert_allclose(tiny, 1.0, atol=1e-6)


@pytest.mark.parametrize('overrides,words', [
    (dict(optimizer=dict(name='lbfgs', learning_rate=None)), 'jitter'),
    (dict(optimizer=dict(name='lbfgs', learning_rate=None), jitter=0,
          transform=dict(scale=0.0, rotate=0.0)), 'blur'),
    (dict(image_size=32), 'image_size=28'),
    (dict(classes=(10,)), r'\[0, 10\)'),
    (dict(classes=(3, 3)), 'twice'),
    (dict(network=dict(name='resnet50', classifier_arg='', classifier_workdir='')),
     'network.name'),
])
def test_bad_input_is_one_clear_error(overrides, words, classifier_dir):
  config = _mnist(classifier_dir, blur=dict(every=2, sigma=0.5))
  config.update(overrides)
  with pytest.raises(UserError, match=words):
    train._Run(config, None)


def test_lbfgs_is_allowed_without_jitter_or_blur(classifier_dir):
  config = _mnist(classifier_dir, jitter=0, blur=dict(every=0, sigma=0.5),
                  optimizer=dict(name='lbfgs', memory_size=5, learning_rate=None))
  run = train._Run(config, None)
  state = run.init_state()
  losses = []
  for _ in range(3):
    state, metrics = run.train_step(state, {})
    losses.append(float(metrics['loss']))
  assert losses[-1] < losses[0]


def test_run_writes_result_and_probabilities_and_resumes_bit_identically(classifier_dir,
                                                                        tmp_path):
  # Blur at steps 2 and 4, and jitter: both must replay exactly after the resume.
  config = _mnist(classifier_dir, num_train_steps=4, blur=dict(every=2, sigma=0.5))
  config.checkpoint_every_steps = config.eval_every_steps = 2
  straight = str(tmp_path / 'straight')
  results = train.train_and_evaluate(config, straight)
  metrics = results['metrics']
  assert ({f'prob_{d}' for d in range(10)} | {f'score_{d}' for d in range(10)}
          | {'mean_prob', 'top1_fraction'}) <= set(metrics)
  assert metrics['mean_prob'] == pytest.approx(np.mean([metrics[f'prob_{d}']
                                                        for d in range(10)]))
  from PIL import Image  # pylint: disable=g-import-not-at-top
  assert Image.open(os.path.join(straight, 'result.png')).size == (4 * 28 + 3, 3 * 28 + 2)
  samples = resume_matches(config, straight, tmp_path, 4, 10)
  assert samples.shape == (10, 28, 28, 1)
