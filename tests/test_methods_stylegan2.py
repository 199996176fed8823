"""StyleGAN2's training: R1 and path length against finite differences, the lazy-regularisation
correction and EMA against the reference's formulas, style mixing's cutoff, the regularisation
phases inside one compiled step, exact resume with ADA, samples and bad input."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from genlab import train
from genlab.errors import UserError
from genlab.methods import gan
from genlab.methods import stylegan2

CONFIG = os.path.join(ROOT, 'configs', 'stylegan2_mnist.py')


def _config(arg='smoke', **overrides):
  from configs import stylegan2_mnist  # pylint: disable=g-import-not-at-top
  c = stylegan2_mnist.get_config(arg)
  c.update_from_flattened_dict(overrides)
  return c


def test_r1_penalty_matches_finite_differences():
  """|grad_x D(x)|^2 per image (Mescheder et al. 2018, Eq. 9) of a nonlinear D."""
  w = jax.random.normal(jax.random.key(0), (3, 3, 2))
  d = lambda x: jnp.sum(jnp.tanh(x * w) ** 2, axis=(1, 2, 3)) + jnp.sum(x, axis=(1, 2, 3))
  x = np.random.default_rng(0).normal(size=(2, 3, 3, 2)).astype(np.float32)
  penalty = np.asarray(gan.r1_penalty(d, jnp.asarray(x)))
  eps = 1e-2
  grads = np.zeros_like(x, np.float64)
  for idx in np.ndindex(x.shape[1:]):
    for sign in (1, -1):
      shifted = x.copy()
      shifted[(slice(None),) + idx] += sign * eps
      grads[(slice(None),) + idx] += sign * np.asarray(d(jnp.asarray(shifted)), np.float64)
  expected = np.sum((grads / (2 * eps)) ** 2, axis=(1, 2, 3))
  np.testing.assert_allclose(penalty, expected, rtol=2e-3)


def test_path_lengths_match_finite_differences():
  """|J_w^T y|_2 with y ~ N(0, I) / sqrt(H W) (Karras et al. 2020, Eq. 4): the norm over w's
  dimensions of d(sum g(w) y)/dw by central differences, averaged over the ws layers."""
  a = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 4, 5, 1)).astype(np.float32))

  def synthesize(ws):  # (B, N=3, W=5) -> (B, 4, 4, 1), nonlinear in w
    return jnp.einsum('bnw,nhvwc->bhvc', jnp.sin(ws), a)

  ws = jnp.asarray(np.random.default_rng(2).normal(size=(2, 3, 5)).astype(np.float32))
  key = jax.random.key(3)
  lengths = np.asarray(stylegan2.path_lengths(synthesize, ws, key))
  y = np.asarray(jax.random.normal(key, (2, 4, 4, 1))) / 4.0
  eps, ws_np = 1e-2, np.asarray(ws, np.float64)
  grads = np.zeros_like(ws_np)
  for idx in np.ndindex(ws_np.shape[1:]):
    for sign in (1, -1):
      shifted = ws_np.copy()
      shifted[(slice(None),) + idx] += sign * eps
      out = np.asarray(synthesize(jnp.asarray(shifted, jnp.float32)), np.float64)
      grads[(slice(None),) + idx] += sign * np.sum(out * y, axis=(1, 2, 3))
  grads /= 2 * eps
  expected = np.sqrt(np.mean(np.sum(grads ** 2, axis=2), axis=1))
  np.testing.assert_allclose(lengths, expected, rtol=2e-3)


def test_lazy_correction_is_the_references():
  """training_loop.py: mb_ratio = k / (k + 1); lr x mb_ratio; betas ** mb_ratio. The corrected
  optimiser of a config makes exactly the update of Adam at those values."""
  lr, (b1, b2) = stylegan2.lazy_regularization(0.0025, (0.0, 0.99), 16)
  assert lr == pytest.approx(0.0025 * 16 / 17) and b1 == 0.0
  assert b2 == pytest.approx(0.99 ** (16 / 17)) and b2 > 0.99
  tx, _ = stylegan2._optimizer(_config(), 'd_optimizer', 16)  # pylint: disable=protected-access
  reference = optax.adam(0.0025 * 16 / 17, b1=0.0, b2=0.99 ** (16 / 17), eps=1e-8)
  params = {'w': jnp.arange(4.0)}
  grads = {'w': jnp.asarray([0.5, -1.0, 2.0, 0.0])}
  state, ref_state = tx.init(params), reference.init(params)
  for _ in range(3):
    update, state = tx.update(grads, state, params)
    ref_update, ref_state = reference.update(grads, ref_state, params)
    np.testing.assert_allclose(update['w'], ref_update['w'], rtol=1e-6)
  with pytest.raises(UserError, match='adam'):
    stylegan2._optimizer(_config(**{'g_optimizer.name': 'sgd'}), 'g_optimizer', 4)  # pylint: disable=protected-access


def test_ema_beta_is_the_references():
  """ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8)), ema_nimg = min(1000 ema_kimg, images
  seen x rampup)."""
  assert float(stylegan2.ema_beta(0, 32, 10.0, 0.05)) == 0.0  # the first step copies G
  assert float(stylegan2.ema_beta(100, 32, 10.0, 0.05)) == pytest.approx(0.5 ** (32 / 160))
  assert float(stylegan2.ema_beta(100_000, 32, 10.0, 0.05)) == pytest.approx(0.5 ** (32 / 1e4))
  assert float(stylegan2.ema_beta(0, 32, 10.0, 0.0)) == pytest.approx(0.5 ** (32 / 1e4))


def test_style_mixing_cutoff():
  """One cutoff per batch, uniform on [1, N) when mixing, N (no mixing) otherwise."""
  ws, other = jnp.zeros((2, 6, 3)), jnp.ones((2, 6, 3))
  cutoffs = []
  for i in range(400):
    mixed = np.asarray(stylegan2.style_mix(ws, other, jax.random.key(i), 0.9))
    taken = mixed[0, :, 0] > 0
    assert (mixed[0] == mixed[1]).all()
    first = int(np.argmax(taken)) if taken.any() else 6
    assert taken[first:].all() and not taken[:first].any()
    cutoffs.append(first)
  counts = np.bincount(cutoffs, minlength=7)
  assert counts[0] == 0 and 0.05 < counts[6] / 400 < 0.16  # 10 % unmixed
  assert all(50 < c < 100 for c in counts[1:6])             # 18 % each of 1..5
  assert not np.asarray(stylegan2.style_mix(ws, other, jax.random.key(0), 0.0)).any()


@pytest.fixture(scope='module')
def trained(stylegan2_run):
  return stylegan2_run


def test_trains_through_the_trainer_and_resumes_exactly(trained, tmp_path):
  c, straight = trained
  rows = [json.loads(l) for l in open(os.path.join(straight, 'metrics.jsonl'))]
  train_rows = [r for r in rows if r['split'] == 'train']
  assert all(np.isfinite(r['loss']) for r in train_rows)
  assert len({r['augment_p'] for r in train_rows}) > 1  # p moved
  results = json.load(open(os.path.join(straight, 'results.json')))['metrics']
  assert 'fid' in results and 'd_accuracy' in results
  samples = sorted(os.listdir(os.path.join(straight, 'samples')))
  assert any(s.startswith('truncation') for s in samples), samples
  resumed = str(tmp_path / 'resumed')
  shutil.copytree(straight, resumed)
  shutil.rmtree(os.path.join(resumed, 'checkpoints', '6'))
  os.remove(os.path.join(resumed, 'results.json'))
  train.train_and_evaluate(c, resumed)
  states = [train.restore(c, w)[1] for w in (straight, resumed)]
  assert float(states[0].ada['p']) != 0.2
  for x, y in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_regularisation_phases_run_every_interval(trained):
  """pl_interval 2 and r1_interval 4 (the smoke config): the trainer runs the steps labelled
  by Method.phase, so the penalties are recomputed at steps 0, 2, 4 (path length) and 0, 4
  (R1), and carried between."""
  _, workdir = trained
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  rows = {r['step'] - 1: r for r in rows if r['split'] == 'train'}  # row of step t logs t + 1
  assert sorted(rows) == list(range(6))
  changed = lambda name: [t for t in range(1, 6) if rows[t][name] != rows[t - 1][name]]  # noqa: E731
  assert changed('pl_penalty') == [2, 4] and changed('pl_mean') == [2, 4]
  assert changed('r1_penalty') == [4]
  assert rows[0]['pl_mean'] > 0 and rows[0]['r1_penalty'] > 0


def test_phase_labels_follow_the_intervals():
  import types  # pylint: disable=g-import-not-at-top
  info = types.SimpleNamespace(image_shape=(28, 28, 1))
  method = stylegan2.make(_config(**{'loss.pl_interval': 4, 'loss.r1_interval': 16}), info)
  labels = [method.phase(t) for t in range(33)]
  assert labels[0] == labels[16] == labels[32] == 'main+pl+r1'
  assert labels[4] == labels[8] == 'main+pl' and labels[1] == labels[17] == 'main'
  assert labels.count('main') == 24
  off = stylegan2.make(_config(**{'loss.pl_weight': 0.0, 'loss.r1_gamma': 0.0}), info)
  assert {off.phase(t) for t in range(33)} == {'main'}


def test_psi_outside_the_unit_interval_only_when_asked():
  import types  # pylint: disable=g-import-not-at-top
  info = types.SimpleNamespace(image_shape=(28, 28, 1))
  with pytest.raises(UserError, match='extrapolate=True'):
    stylegan2.make(_config(**{'sample.truncation_psi': -0.5}), info)
  stylegan2.make(_config(**{'sample.truncation_psi': 1.5, 'sample.extrapolate': True}), info)


def test_samples_have_the_data_shape(trained, tmp_path):
  c, workdir = trained
  from genlab import sampling  # pylint: disable=g-import-not-at-top
  out = sampling.sample(c, workdir, 5, str(tmp_path / 's.npz'))
  with np.load(out) as f:
    assert f['samples'].shape == (5, 28, 28, 1) and f['samples'].dtype == np.float32
    assert 0 <= f['samples'].min() and f['samples'].max() <= 1


@pytest.mark.parametrize('override, words', [
    ('--config.batch_size=6', ('batch_size', 'mbstd_group_size', 'multiple of 4')),
    ('--config.eval.batch_size=10', ('eval.batch_size', 'multiple of 4')),
    ('--config.model.modconv_impl=fft', ('modconv_impl', 'grouped')),
    ('--config.loss.r1_gamma=-1', ('r1_gamma',)),
    ('--config.sample.truncation_psi=1.5', ('truncation_psi', 'extrapolate=True')),
])
def test_bad_input_is_one_line(override, words, tmp_path):
  proc = run_cli('--config', CONFIG + ':smoke', '--workdir', str(tmp_path / 'w'), override)
  assert_one_line_error(proc, *words)
  assert not os.path.exists(tmp_path / 'w')


# 64 s alone (two compilations of the four-phase step): left to -m slow for CI's time budget;
# test_models_stylegan2.py's test_batch_split_is_the_same_function checks the sliced networks
# (images, logits, gradients) in CI.
@pytest.mark.slow
def test_batch_split_is_the_same_training_step():
  """G's synthesis and D's blocks in 4 slices of the rows (the CPU's 'auto') train as the whole
  batch does, through all four phases (Gmain, Gpl, Dmain, Dr1) for 3 steps: the same losses,
  penalties and gradient norms, up to float32 summation order. At 8 px, the smallest network
  with a block above D's epilogue (each side's step still takes about 30 s to compile)."""
  import types  # pylint: disable=g-import-not-at-top
  info = types.SimpleNamespace(image_shape=(8, 8, 1))
  runs = {}
  for splits in (1, 4):
    method = stylegan2.make(_config(batch_split=splits), info)
    state, seen = method.init(jax.random.key(0)), []
    step = jax.jit(lambda s, b, k: method.train_step(s, b, k, 'main+pl+r1'))  # noqa: B023
    for i in range(3):
      batch = {'image': jax.random.uniform(jax.random.key(i), (8, 8, 8, 1)),
               'label': jnp.zeros((8,), jnp.int32)}
      state, metrics = step(state, batch, jax.random.key(i))
      seen.append([float(metrics[k]) for k in ('g_loss', 'd_loss', 'd_real', 'd_fake',
                                                'g_grad_norm', 'd_grad_norm', 'pl_penalty',
                                                'pl_mean', 'r1_penalty')])
    runs[splits] = seen
  np.testing.assert_allclose(runs[4], runs[1], rtol=1e-4)
