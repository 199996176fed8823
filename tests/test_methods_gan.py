"""The GAN method: losses against their equations, the alternation, EMA, bad input, learning."""
import importlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from genlab.data.source import DataInfo
from genlab.errors import UserError
from genlab.methods import gan

INFO = DataInfo(name='fake', image_shape=(8, 8, 1), num_classes=10,
                num_examples={'train': 64, 'eval': 16, 'test': 16})
UNLABELED = DataInfo(name='faces', image_shape=(8, 8, 1), num_classes=0,
                     num_examples={'train': 64, 'eval': 16, 'test': 16})


def tiny_config(**overrides):
  c = importlib.import_module('configs.gan_mnist').get_config('smoke')
  with c.unlocked():
    c.batch_size = 16
    c.model.g_output_bias = 'zeros'  # 'marginals' reads mnist5k, not these 8x8 images
    c.eval.sample_metrics = ()
    c.eval.test_sample_metrics = ()
    c.update_from_flattened_dict(overrides)
  return c


def batch(n=16, value=0.5, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': jnp.asarray(np.clip(value + 0.05 * rng.standard_normal((n, 8, 8, 1)), 0, 1),
                               jnp.float32),
          'label': jnp.asarray(rng.integers(0, 10, n), jnp.int32)}


# -- losses --------------------------------------------------------------------------------------
def test_losses_match_their_equations():
  r, f = jnp.array([2.0, -1.0]), jnp.array([0.5, -3.0])
  sig = jax.nn.sigmoid
  np.testing.assert_allclose(gan.discriminator_loss('minimax', r, f),
                             -jnp.log(sig(r)) - jnp.log(1 - sig(f)), rtol=1e-5)
  np.testing.assert_allclose(gan.generator_loss('minimax', f), jnp.log(1 - sig(f)), rtol=1e-5)
  np.testing.assert_allclose(gan.generator_loss('non_saturating', f), -jnp.log(sig(f)),
                             rtol=1e-5)
  np.testing.assert_allclose(gan.discriminator_loss('lsgan', r, f),
                             0.5 * (r - 1) ** 2 + 0.5 * f ** 2)
  np.testing.assert_allclose(gan.generator_loss('lsgan', f), 0.5 * (f - 1) ** 2)
  np.testing.assert_allclose(gan.discriminator_loss('wgan_gp', r, f), f - r)
  np.testing.assert_allclose(gan.discriminator_loss('hinge', r, f),
                             np.maximum(0, 1 - r) + np.maximum(0, 1 + f))
  np.testing.assert_allclose(gan.generator_loss('hinge', f), -f)


def test_minimax_and_non_saturating_push_the_generator_the_same_way():
  f = jnp.linspace(-4.0, 4.0, 9)
  g_mm = jax.grad(lambda l: gan.generator_loss('minimax', l).sum())(f)
  g_ns = jax.grad(lambda l: gan.generator_loss('non_saturating', l).sum())(f)
  assert np.all(g_mm < 0) and np.all(g_ns < 0)  # both raise D(G(z))
  # ... but minimax saturates where D rejects the samples (Goodfellow et al. 2014, Sec. 3).
  assert abs(g_mm[0]) < 0.05 and abs(g_ns[0]) > 0.95


def test_gradient_penalty_of_a_linear_critic_is_exact():
  w = jnp.asarray(np.random.default_rng(0).standard_normal((8, 8, 1)), jnp.float32)
  critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
  real, fake = batch()['image'], batch(value=0.2, seed=1)['image']
  gp = gan.gradient_penalty(critic, real, fake, jax.random.key(0))
  np.testing.assert_allclose(gp, (jnp.linalg.norm(w) - 1) ** 2 * np.ones(16), rtol=1e-5)


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_unit_vectors():
  a, b = jnp.array([[1.0, 0.0]]), jnp.array([[0.0, 1.0]])
  path = gan.slerp(a, b, jnp.linspace(0, 1, 5))[0]
  np.testing.assert_allclose(path[0], a[0], atol=1e-6)
  np.testing.assert_allclose(path[-1], b[0], atol=1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1), 1.0, atol=1e-6)


def test_ema_decay_warms_up_then_stays_at_the_configured_value():
  assert float(gan.ema_decay(0.999, 0)) == pytest.approx(0.1)
  assert float(gan.ema_decay(0.999, 10 ** 6)) == pytest.approx(0.999)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize('overrides, info, message', [
    ({'loss.kind': 'wasserstein'}, INFO, 'loss.kind'),
    ({'loss.n_critic': 0}, INFO, 'n_critic'),
    ({'loss.n_critic': 3}, INFO, 'not divisible'),
    ({'model.conditional': True}, UNLABELED, "no 'label'"),
    ({'model.kind': 'dcgan', 'loss.kind': 'wgan_gp', 'model.d_norm': 'batch'}, INFO, 'd_norm'),
    ({'ema_decay': 1.0}, INFO, 'ema_decay'),
    ({'model.kind': 'dcgan'}, DataInfo('odd', (10, 10, 1), 0, {}), 'DCGAN needs'),
    ({'augment.kind': 'ada', 'augment.ops': ()}, INFO, 'safe'),
    ({'augment.kind': 'ada', 'augment.ops': ('xint', 'flip')}, INFO, "'flip'.*xflip"),
    ({'augment.kind': 'diffaugment', 'augment.policy': ('colour',)}, INFO, 'color'),
    ({'augment.kind': 'mixup'}, INFO, 'augment.kind'),
    ({'loss.kind': 'wgan_gp', 'model.kind': 'mlp', 'loss.r1_gamma': 1.0}, INFO, 'r1_gamma=0'),
])
def test_bad_config_is_one_clear_error(overrides, info, message):
  with pytest.raises(UserError, match=message):
    gan.make(tiny_config(**overrides), info)


# -- the step ------------------------------------------------------------------------------------
@pytest.mark.parametrize('kind', gan.LOSSES)
def test_one_step_of_every_loss_is_finite_and_updates_both_players(kind):
  m = gan.make(tiny_config(**{'loss.kind': kind}), INFO)
  state = m.init(jax.random.key(0))
  new, metrics = jax.jit(m.train_step)(state, batch(), jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for name in ('g_params', 'd_params'):
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), getattr(state, name),
                         getattr(new, name))
    assert max(jax.tree.leaves(moved)) > 0, name
  assert int(new.step) == 1
  assert kind != 'wgan_gp' or float(metrics['gradient_penalty']) > 0


@pytest.mark.parametrize('kind', ['diffaugment', 'ada'])
def test_augmented_discriminator_steps_and_generator_gradients_through_the_augmentation(kind):
  config = tiny_config(**{'augment.kind': kind, 'augment.p': 0.5, 'augment.adaptive': False,
                          'augment.ops': ('xint', 'scale', 'rotate', 'brightness', 'cutout')})
  m = gan.make(config, INFO)
  plain = gan.make(tiny_config(), INFO)
  state = m.init(jax.random.key(0))
  assert isinstance(state, gan.ADAGANState) == (kind == 'ada')
  _, metrics = jax.jit(m.train_step)(state, batch(), jax.random.key(1))
  _, unaugmented = jax.jit(plain.train_step)(plain.init(jax.random.key(0)), batch(),
                                             jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for name in ('d_loss', 'g_loss', 'g_grad_norm'):  # D saw other images, G's gradient too
    assert float(metrics[name]) != float(unaugmented[name]), name
  assert float(metrics['g_grad_norm']) > 0


def test_ada_p_follows_the_reference_heuristic():
  """stylegan2-ada-pytorch training_loop.py: every ada_interval steps, p += sign(mean r_t -
  target) * batch * interval / (kimg * 1000), floored at 0; replayed here from the r_t the
  step reports."""
  interval, kimg, target, size = 3, 0.08, -0.75, 16   # this D calls most reals fake early
  config = tiny_config(**{'augment.kind': 'ada', 'augment.interval': interval,
                          'augment.kimg': kimg, 'augment.target': target,
                          'augment.ops': ('xint', 'brightness')})
  m = gan.make(config, INFO)
  state, step = m.init(jax.random.key(0)), jax.jit(m.train_step)
  p, signs, moves, highest = 0.0, [], set(), 0.0
  for i in range(15):
    state, metrics = step(state, batch(seed=i % 2), jax.random.key(i))
    assert float(metrics['augment_p']) == pytest.approx(p, abs=1e-6), i
    signs.append(float(metrics['r_t']))
    if (i + 1) % interval == 0:
      adjust = np.sign(np.mean(signs) - target) * size * interval / (kimg * 1000)
      p, signs = max(p + adjust, 0.0), []
      moves.add(np.sign(adjust))
      highest = max(highest, p)
    assert float(state.ada['p']) == pytest.approx(p, abs=1e-6), i
  assert highest > 0 and {-1.0, 1.0} <= moves, (highest, moves)   # both directions


@pytest.mark.parametrize('kind', ['mlp', 'dcgan'])
def test_r1_adds_gamma_over_two_times_the_squared_input_gradient_to_d_loss(kind):
  gamma = 3.0
  plain, r1 = (gan.make(tiny_config(**{'model.kind': kind, 'loss.r1_gamma': g}), INFO)
               for g in (0.0, gamma))
  state = plain.init(jax.random.key(0))
  _, without = jax.jit(plain.train_step)(state, batch(), jax.random.key(1))
  _, metrics = jax.jit(r1.train_step)(state, batch(), jax.random.key(1))
  assert float(without['gradient_penalty']) == 0.0
  assert float(metrics['gradient_penalty']) > 0
  np.testing.assert_allclose(float(metrics['d_loss']) - float(without['d_loss']),
                             gamma / 2 * float(metrics['gradient_penalty']), rtol=1e-4)
  assert float(metrics['d_grad_norm']) != float(without['d_grad_norm'])


def test_n_critic_discriminator_updates_per_generator_update():
  m = gan.make(tiny_config(**{'loss.n_critic': 4}), INFO)
  state = m.init(jax.random.key(0))
  new, _ = jax.jit(m.train_step)(state, batch(), jax.random.key(1))
  # Adam's step counters: 4 discriminator updates, 1 generator update.
  assert int(new.d_opt_state[0].count) == 4
  assert int(new.g_opt_state[0].count) == 1


def test_ema_follows_the_generator_and_is_what_samples_use():
  m = gan.make(tiny_config(ema_decay=0.0), INFO)
  state = m.init(jax.random.key(0))
  step = jax.jit(m.train_step)
  for i in range(3):
    state, _ = step(state, batch(seed=i), jax.random.key(i))
  leaves = zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(state.g_params))
  assert all(np.array_equal(a, b) for a, b in leaves)  # decay 0: EMA == weights

  m = gan.make(tiny_config(ema_decay=0.99), INFO)
  state = m.init(jax.random.key(0))
  for i in range(3):
    state, _ = jax.jit(m.train_step)(state, batch(seed=i), jax.random.key(i))
  assert not np.array_equal(jax.tree.leaves(state.ema_params)[0],
                            jax.tree.leaves(state.g_params)[0])
  s1 = m.sample(state, jax.random.key(5), 4)
  swapped = state.replace(ema_params=state.g_params)
  assert not np.allclose(s1, m.sample(swapped, jax.random.key(5), 4))
  assert s1.shape == (4, 8, 8, 1) and float(s1.min()) >= 0 and float(s1.max()) <= 1


@pytest.mark.parametrize('kind', ['mlp', 'dcgan'])
def test_the_generator_learns_the_data_mean(kind):
  """Data: 8x8 images of brightness ~0.8; after 300 steps the samples' mean moves toward it."""
  overrides = {'model.kind': kind, 'ema_decay': 0.0, 'g_optimizer.learning_rate': 1e-3,
               'd_optimizer.learning_rate': 1e-3, 'model.d_input_dropout': 0.0,
               'model.d_hidden_dropout': 0.0}
  if kind == 'dcgan':
    info = DataInfo('fake', (8, 8, 1), 10, {})
  else:
    info = INFO
  m = gan.make(tiny_config(**overrides), info)
  state = m.init(jax.random.key(0))
  step = jax.jit(m.train_step)
  gap0 = abs(float(jnp.mean(m.sample(state, jax.random.key(9), 64))) - 0.8)
  for i in range(300):
    state, metrics = step(state, batch(value=0.8, seed=i), jax.random.key(i))
  gap = abs(float(jnp.mean(m.sample(state, jax.random.key(9), 64))) - 0.8)
  assert gap < 0.5 * gap0, (gap0, gap)


def test_conditional_generator_and_visuals():
  m = gan.make(tiny_config(**{'model.conditional': True}), INFO)
  state = m.init(jax.random.key(0))
  grids = m.visualize(state, jax.random.key(1), None)
  assert set(grids) == {'samples', 'samples_by_class', 'interpolation'}
  assert grids['samples_by_class'].shape[0] == 10 * 8 + 9  # one row per class
  evals = m.eval_step(state, dict(batch(), mask=jnp.ones(16)), jax.random.key(2))
  assert 0 <= float(evals['d_accuracy']) <= 16


def test_spectral_norm_bounds_the_discriminator_kernels():
  m = gan.make(tiny_config(**{'model.spectral_norm': True}), INFO)
  state = m.init(jax.random.key(0))
  step = jax.jit(m.train_step)
  for i in range(5):
    state, metrics = step(state, batch(seed=i), jax.random.key(i))
  assert np.isfinite(float(metrics['d_loss']))
  # The power-iteration vectors live in the discriminator's stats and are updated.
  assert jax.tree.leaves(state.d_stats)


# -- bad input through the command line: one line, exit 2, nothing written ------------------------
@pytest.mark.parametrize('override, words', [
    ('--config.loss.kind=wasserstein', ('loss.kind', 'wgan_gp')),
    ('--config.loss.n_critic=0', ('n_critic', '>= 1')),
])
def test_cli_bad_gan_config(override, words, data_dir, tmp_path):
  proc = run_cli('--config', 'configs/dcgan_mnist.py:smoke', '--workdir', str(tmp_path / 'w'),
                 override)
  assert_one_line_error(proc, *words)
  assert not (tmp_path / 'w' / 'checkpoints').exists()


def test_cli_sample_without_checkpoint(data_dir, tmp_path):
  proc = run_cli('--config', 'configs/gan_mnist.py:smoke', '--workdir', str(tmp_path / 'w'),
                 '--mode=sample', '--output', str(tmp_path / 's.npz'))
  assert_one_line_error(proc, 'No checkpoint', 'train first')
  assert not (tmp_path / 's.npz').exists()


def test_cli_conditional_gan_on_unlabeled_faces(tmp_path):
  """celeb_a (no 'label' feature) under TFDS's mocking, through run.py's real main."""
  script = ('import runpy, sys; import tensorflow_datasets as tfds\n'
            'sys.argv = ["run.py"] + sys.argv[1:]\n'
            'with tfds.testing.mock_data(num_examples=16):\n'
            '  runpy.run_path("run.py", run_name="__main__")\n')
  proc = subprocess.run(
      [sys.executable, '-c', script, '--config', 'configs/dcgan_celeba.py:smoke',
       '--workdir', str(tmp_path / 'w'), '--config.model.conditional=True'],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert_one_line_error(proc, 'conditional', "no 'label'")


# -- through the trainer -----------------------------------------------------------------------
def _wgan_smoke():
  c = importlib.import_module('configs.wgan_gp_mnist').get_config('smoke')
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ()
  # ADA, with p moving fast, so that its state resumes exactly too.
  c.augment.update(kind='ada', ops=('xint', 'scale', 'brightness'), kimg=0.2, interval=2)
  return c


def test_resume_of_wgan_gp_is_bit_identical(data_dir, tmp_path):
  """Both players, both optimizer states, the EMA, the critic scan and ADA's p resume
  exactly."""
  import shutil  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  full, partial = str(tmp_path / 'full'), str(tmp_path / 'partial')
  train.train_and_evaluate(_wgan_smoke(), full)
  shutil.copytree(full, partial)
  shutil.rmtree(os.path.join(partial, 'checkpoints', '20'))
  train.train_and_evaluate(_wgan_smoke(), partial)
  a, b = train.restore(_wgan_smoke(), full)[1], train.restore(_wgan_smoke(), partial)[1]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert int(a.d_opt_state[0].count) == 20 * 5  # n_critic = 5 critic updates per step
  assert float(a.ada['p']) > 0


def test_conv_implementations_share_parameters_and_outputs():
  """'fast'/'matmul' are the same function as XLA's layers: one checkpoint serves all."""
  nets = {impl: gan.gan_models.make_networks('dcgan', (28, 28, 1), features=8, conv_impl=impl[0],
                                             d_conv_impl=impl[1])
          for impl in (('xla', 'xla'), ('fast', 'matmul'))}
  z = jax.random.normal(jax.random.key(0), (4, 100))
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  (g0, d0, _), (g1, d1, _) = nets[('xla', 'xla')], nets[('fast', 'matmul')]
  gv, dv = g0.init(jax.random.key(2), z), d0.init(jax.random.key(3), x)
  assert jax.tree.structure(gv) == jax.tree.structure(g1.init(jax.random.key(2), z))
  assert jax.tree.structure(dv) == jax.tree.structure(d1.init(jax.random.key(3), x))
  out = lambda net, v, inp: net.apply(v, inp, mutable=['batch_stats'])[0]
  np.testing.assert_allclose(out(g0, gv, z), out(g1, gv, z), atol=1e-5)
  np.testing.assert_allclose(out(d0, dv, x), out(d1, dv, x), atol=1e-4)


@pytest.mark.parametrize('backend,forms', [('cpu', ('fast', 'matmul')), ('gpu', ('xla', 'xla')),
                                           ('tpu', ('xla', 'xla'))])
def test_auto_conv_impls_choose_by_backend(monkeypatch, backend, forms):
  """'auto' (the default) picks the CPU rewrites only on the CPU; GPU and TPU get XLA's convs
  (cuDNN's there). The backend is faked: the choice is made when the method is built."""
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  c = importlib.import_module('configs.dcgan_mnist').get_config('smoke')
  assert (c.model.conv_impl, c.model.d_conv_impl) == ('auto', 'auto')
  g, d, _ = gan.build_networks(c, DataInfo('fake', (28, 28, 1), 0, {}), 0)
  assert (g.conv_impl, d.conv_impl) == forms
  c.model.d_conv_impl = 'space_to_depth'  # an explicit choice holds on every backend
  assert gan.build_networks(c, DataInfo('fake', (28, 28, 1), 0, {}), 0)[1].conv_impl == (
      'space_to_depth')
  c.model.conv_impl = 'cudnn'
  with pytest.raises(UserError, match=r"model.conv_impl='cudnn'.*\['auto', 'xla', 'fast'\]"):
    gan.build_networks(c, DataInfo('fake', (28, 28, 1), 0, {}), 0)
