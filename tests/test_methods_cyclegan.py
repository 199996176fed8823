"""CycleGAN: the official image pool, the losses, one jitted step through the trainer, exact
resume (pool and schedule included), translations by --mode=sample, and the bad-input lines."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from genlab import optim
from genlab import train
from genlab.errors import UserError
from genlab.methods import cyclegan

CONFIG = os.path.join(ROOT, 'configs', 'cyclegan_digits_mnist.py')


def _official_pool(pool_size):
  """util/image_pool.py of the official code, with its random draws given from outside."""
  images, returned = [], []

  def query(image, u, index):
    if len(images) < pool_size:
      images.append(image)
      return image
    if u > 0.5:
      old = images[index]
      images[index] = image
      return old
    return image
  return images, query


@pytest.mark.parametrize('pool_size', [0, 1, 5])
def test_pool_follows_the_official_rule_draw_for_draw(pool_size):
  """The jitted pool and the official Python pool, fed the same draws, return the same images
  and hold the same ones, batch after batch (while filling, the new image comes back)."""
  rng = np.random.default_rng(0)
  pool = cyclegan.empty_pool(pool_size, (2, 2, 1))
  stored, query = _official_pool(pool_size)
  query_jit = jax.jit(cyclegan.pool_query)
  for step in range(6):
    batch = rng.normal(size=(3, 2, 2, 1)).astype(np.float32)
    key = jax.random.key(step)
    pool, out = query_jit(pool, jnp.asarray(batch), key)
    if pool_size == 0:
      np.testing.assert_array_equal(out, batch)
      continue
    want = []
    for image, k in zip(batch, jax.random.split(key, len(batch))):
      swap_key, index_key = jax.random.split(k)
      u = float(jax.random.uniform(swap_key))
      index = int(jax.random.randint(index_key, (), 0, pool_size))
      want.append(query(image, u, index))
    np.testing.assert_array_equal(np.asarray(out), np.stack(want))
    assert int(pool.count) == len(stored)
    np.testing.assert_array_equal(np.asarray(pool.images)[:len(stored)], np.stack(stored))


def test_a_full_pool_returns_stored_images_about_half_the_time():
  pool = cyclegan.empty_pool(50, (1, 1, 1))
  query_jit = jax.jit(cyclegan.pool_query)
  from_pool = []
  for step in range(60):
    batch = jnp.full((10, 1, 1, 1), float(step + 1))
    pool, out = query_jit(pool, batch, jax.random.key(step))
    if step >= 5:  # the pool filled during the first 5 batches
      from_pool.append(np.mean(np.asarray(out).ravel() != step + 1))
  assert 0.4 < np.mean(from_pool) < 0.6


def test_jitter_keeps_shape_and_crops_from_the_resized_image():
  x = jnp.tile(jnp.arange(8.0)[None, None, :, None], (2, 8, 1, 1))
  out = cyclegan.jitter(x, jax.random.key(0), load_size=10, flip=True)
  assert out.shape == x.shape
  same = cyclegan.jitter(x, jax.random.key(0), load_size=0, flip=False)
  np.testing.assert_array_equal(same, x)


def test_linear_decay_is_constant_then_falls_to_zero():
  import ml_collections  # pylint: disable=g-import-not-at-top
  c = ml_collections.ConfigDict(dict(num_train_steps=100, g_optimizer=dict(
      name='adam', learning_rate=2e-4, schedule='linear_decay', decay_steps=50)))
  _, schedule = optim.make_optimizer(c, 'g_optimizer')
  lr = [float(schedule(t)) for t in (0, 49, 50, 75, 100)]
  assert lr[0] == lr[1] == lr[2] == pytest.approx(2e-4)
  assert lr[3] == pytest.approx(1e-4) and lr[4] == 0.0


def _config(**overrides):
  from configs import cyclegan_digits_mnist  # pylint: disable=g-import-not-at-top
  c = cyclegan_digits_mnist.get_config('smoke')
  c.eval.domain_classifiers.a = None  # the judges have tests of their own (below)
  c.eval.domain_classifiers.b = None
  c.update_from_flattened_dict(overrides)
  return c


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
  """30 steps of the smoke networks (pool of 20, so it fills after 3 steps of 8 translations),
  checkpoints at 15 and 30: (config, workdir)."""
  c = _config(num_train_steps=30, eval_every_steps=30, checkpoint_every_steps=15,
              log_every_steps=1, **{'model.g_features': 8, 'loss.pool_size': 20})
  workdir = str(tmp_path_factory.mktemp('cyclegan') / 'run')
  train.train_and_evaluate(c, workdir)
  return c, workdir


def test_losses_fall_and_the_pool_fills(trained):
  _, workdir = trained
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  rows = [r for r in rows if r['split'] == 'train']
  cycle = [r['cycle_a'] + r['cycle_b'] for r in rows]
  assert np.mean(cycle[-5:]) < 0.7 * np.mean(cycle[:5])  # the cycle is learned
  assert rows[-1]['pool_fill'] == 20 and rows[0]['pool_fill'] == 8
  assert rows[-1]['learning_rate'] < rows[0]['learning_rate']  # the linear decay ran
  for name in ('g_adv_a', 'g_adv_b', 'identity_a', 'identity_b', 'd_a', 'd_b'):
    assert np.isfinite(rows[-1][name])
  results = json.load(open(os.path.join(workdir, 'results.json')))['metrics']
  assert 0 < results['cycle_l1_a'] < 1 and 'd_b_translated' in results
  assert os.path.exists(os.path.join(workdir, 'analysis', 'test_a_to_b.png'))


def test_resume_is_exact_with_the_pool_and_schedule(trained, tmp_path):
  """Resumed from step 15 of 30, the final state (generators, discriminators, Adam moments, the
  pools) and the results equal the straight run's."""
  c, straight = trained
  resumed = str(tmp_path / 'resumed')
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'checkpoints', '30'))
  os.remove(os.path.join(resumed, 'results.json'))
  train.train_and_evaluate(c, resumed)
  states = [train.restore(c, w)[1] for w in (straight, resumed)]
  assert int(states[0].pools['a'].count) == 20
  for x, y in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  read = lambda w: json.load(open(os.path.join(w, 'results.json')))['metrics']  # noqa: E731
  assert read(straight) == read(resumed)


def test_sample_mode_translates_either_way(trained, tmp_path):
  c, workdir = trained
  c = c.copy_and_resolve_references()
  from genlab import sampling  # pylint: disable=g-import-not-at-top
  for direction in ('a_to_b', 'b_to_a'):
    c.sample.direction = direction
    out = sampling.sample(c, workdir, 5, str(tmp_path / f'{direction}.npz'))
    with np.load(out) as f:
      assert f['samples'].shape == (5, 28, 28, 1) and f['samples'].dtype == np.float32
      assert f['inputs'].shape == (5, 28, 28, 1) and f['labels'].shape == (5,)
      assert 0 <= f['samples'].min() and f['samples'].max() <= 1
  with np.load(tmp_path / 'a_to_b.npz') as a, np.load(tmp_path / 'b_to_a.npz') as b:
    assert not np.array_equal(a['inputs'], b['inputs'])  # digits, then MNIST test images


def test_semantic_loss_and_content_metrics_with_the_domain_classifiers(data_dir, tmp_path):
  """The smoke judges (trained into the test cache): CyCADA's accuracy, source only, flips and
  FID of translations are reported for both directions, the semantic term is logged."""
  from configs import cyclegan_digits_mnist  # pylint: disable=g-import-not-at-top
  c = cyclegan_digits_mnist.get_config('smoke,semantic')
  c.num_train_steps = 3
  results = train.train_and_evaluate(c, str(tmp_path / 'run'))['metrics']
  for name in ('a_to_b', 'b_to_a'):
    for metric in ('accuracy', 'source_only/accuracy', 'fid', 'source_only/fid', 'label_flip'):
      assert f'{metric}_{name}' in results, (metric, name, sorted(results))
    assert 0 <= results[f'accuracy_{name}'] <= 1
  rows = [json.loads(l) for l in open(tmp_path / 'run' / 'metrics.jsonl')]
  assert any('semantic_a' in r and 'semantic_b' in r for r in rows)


@pytest.mark.parametrize('override, words', [
    ('--config.data.domains.b.channels=3', ('1-channel', '3-channel', 'channels=')),
    ('--config.data.domains.a.image_size=20', ('20x20', '28x28', 'image_size=')),
    ('--config.loss.pool_size=-1', ('pool_size',)),
    ('--config.loss.cycle_weight_a=-10', ('cycle_weight_a',)),
    ('--config.loss.cycle_noise=-0.1', ('cycle_noise',)),
])
def test_bad_input_is_one_line(override, words, data_dir, tmp_path):
  proc = run_cli('--config', CONFIG + ':smoke', '--workdir', str(tmp_path / 'w'), override,
                 env={'TFDS_DATA_DIR': data_dir})
  assert_one_line_error(proc, *words)
  assert not os.path.exists(tmp_path / 'w')


def test_direction_flag_applies_to_translators_only(tmp_path):
  proc = run_cli('--config', os.path.join(ROOT, 'configs', 'vae_mnist.py:smoke'), '--mode=sample',
                 '--direction=b_to_a', '--workdir', str(tmp_path / 'w'))
  assert_one_line_error(proc, '--direction', 'cyclegan')


def test_semantic_loss_without_its_classifier_is_refused():
  c = _config(**{'loss.semantic_weight': 1.0, 'loss.semantic_classifier': None})
  with pytest.raises(UserError, match='semantic_weight'):
    train._Run(c, None)  # pylint: disable=protected-access


def test_cycle_noise_enters_the_cycle_terms_only():
  """loss.cycle_noise (Bashkirova et al. 2019): the same step with and without noise differs in
  the cycle terms (noisy translations are cycled) and in nothing the noise does not reach."""
  import types  # pylint: disable=g-import-not-at-top
  shape = types.SimpleNamespace(image_shape=(12, 12, 1))
  info = types.SimpleNamespace(domains={'a': shape, 'b': shape})
  batch = {k: {'image': jax.random.uniform(jax.random.key(i), (4, 12, 12, 1)),
               'label': jnp.zeros((4,), jnp.int32)} for i, k in enumerate('ab')}
  metrics = {}
  for noise in (0.0, 0.5):
    method = cyclegan.make(_config(**{'loss.cycle_noise': noise}), info)
    state = method.init(jax.random.key(0))
    _, metrics[noise] = jax.jit(method.train_step)(state, batch, jax.random.key(1))
  for name in ('g_adv_a', 'g_adv_b', 'identity_a', 'identity_b'):
    assert float(metrics[0.0][name]) == float(metrics[0.5][name]), name
  for name in ('cycle_a', 'cycle_b'):
    assert float(metrics[0.5][name]) != float(metrics[0.0][name]), name


def test_batch_split_is_the_same_training_step():
  """2 independent slices (the CPU's 'auto') train as the whole batch does: the same losses and
  gradient norms over steps (the pool draws the same), up to float32 summation order."""
  import types  # pylint: disable=g-import-not-at-top
  shape = types.SimpleNamespace(image_shape=(12, 12, 1))
  info = types.SimpleNamespace(domains={'a': shape, 'b': shape})
  runs = {}
  for splits in (1, 2):
    method = cyclegan.make(_config(**{'batch_split': splits, 'loss.pool_size': 4}), info)
    state, step, seen = method.init(jax.random.key(0)), jax.jit(method.train_step), []
    for i in range(3):
      batch = {k: {'image': jax.random.uniform(jax.random.key(10 * i + j), (8, 12, 12, 1)),
                   'label': jnp.zeros((8,), jnp.int32)} for j, k in enumerate('ab')}
      state, metrics = step(state, batch, jax.random.key(i))
      seen.append([float(metrics[k]) for k in ('g_loss', 'cycle_a', 'd_a', 'd_b_fake',
                                                'g_grad_norm', 'd_grad_norm')])
    runs[splits] = seen
  np.testing.assert_allclose(runs[2], runs[1], rtol=1e-4)
