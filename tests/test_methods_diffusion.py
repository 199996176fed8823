"""The diffusion method: schedules and the bound against their equations, both samplers against
a data distribution whose optimal denoiser is known, the U-Net, guidance, bad input, resume."""
import importlib
import math
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import norm

from conftest import assert_one_line_error, run_cli
from genlab.data.source import DataInfo
from genlab.errors import UserError
from genlab.methods import diffusion
from genlab.models import unet

INFO = DataInfo(name='fake', image_shape=(8, 8, 1), num_classes=10,
                num_examples={'train': 64, 'eval': 16, 'test': 16})


def tiny_config(name='ddpm_mnist', **overrides):
  c = importlib.import_module(f'configs.{name}').get_config('smoke')
  with c.unlocked():
    c.model.patch_size = 1
    c.eval.sample_metrics = ()
    c.eval.test_sample_metrics = ()
    c.update_from_flattened_dict(overrides)
  return c


def batch(n=16, seed=0):
  rng = np.random.default_rng(seed)
  return {'image': jnp.asarray(rng.uniform(0, 1, (n, 8, 8, 1)), jnp.float32),
          'label': jnp.asarray(rng.integers(0, 10, n), jnp.int32),
          'mask': jnp.ones((n,), jnp.float32)}


# -- schedules and the pieces of the bound -------------------------------------------------------
def test_schedules_match_their_equations():
  linear = diffusion.betas('linear', 1000)
  np.testing.assert_allclose(linear[[0, -1]], [1e-4, 0.02])
  np.testing.assert_allclose(diffusion.betas('linear', 100)[[0, -1]], [1e-3, 0.2])  # x 1000/T
  cosine = diffusion.betas('cosine', 1000)
  f = lambda t: np.cos((t / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2
  abar = np.cumprod(1 - cosine)
  np.testing.assert_allclose(abar[:900], f(np.arange(1, 901)) / f(0), rtol=1e-6)
  assert cosine.max() <= 0.999 and np.all(np.diff(abar) < 0)


def test_subsequence_spans_both_ends_without_repeats():
  for steps in (1, 2, 50, 999, 1000):
    taus = diffusion.subsequence(1000, steps)
    assert len(set(taus)) == steps and taus[-1] == 999
  np.testing.assert_array_equal(diffusion.subsequence(10, 10), np.arange(10))


def test_discretized_decoder_is_a_distribution_over_the_256_levels():
  levels = jnp.linspace(-1.0, 1.0, 256)
  for mean, log_scale in ((0.1, -2.0), (-0.97, -4.0), (0.5, 0.0)):
    log_p = diffusion.discretized_gaussian_log_likelihood(
        levels, jnp.full_like(levels, mean), jnp.full_like(levels, log_scale))
    np.testing.assert_allclose(jnp.sum(jnp.exp(log_p)), 1.0, rtol=1e-4)
  # An interior bin: Phi((x + 1/255 - m) / s) - Phi((x - 1/255 - m) / s).
  x, m, s = levels[100], 0.2, 0.1
  want = norm.cdf((x + 1 / 255 - m) / s) - norm.cdf((x - 1 / 255 - m) / s)
  np.testing.assert_allclose(jnp.exp(diffusion.discretized_gaussian_log_likelihood(
      x, m, jnp.log(s))), want, rtol=1e-4)


def test_gaussian_kl_matches_its_closed_form():
  got = diffusion.gaussian_kl(0.3, np.log(0.5), -0.1, np.log(2.0))
  np.testing.assert_allclose(got, np.log(2.0 / 0.5) / 2 + (0.5 + 0.4 ** 2) / (2 * 2.0) - 0.5,
                             rtol=1e-6)


# -- samplers and the bound with a known optimal denoiser ----------------------------------------
MU, SD = 0.3, 0.2   # data: each pixel ~ N(MU, SD^2)


def gaussian_denoiser(schedule):
  """E[eps | x_t] for data N(MU, SD^2): x_t ~ N(sqrt(abar) MU, abar SD^2 + 1 - abar)."""
  abar_T = jnp.asarray(schedule.abar, jnp.float32)

  def eps_fn(x_t, t_B):
    abar = abar_T[t_B].reshape((-1,) + (1,) * (x_t.ndim - 1))
    return (jnp.sqrt(1 - abar) * (x_t - jnp.sqrt(abar) * MU)) / (abar * SD ** 2 + 1 - abar)
  return eps_fn


@pytest.mark.parametrize('sampler, steps, eta, variance, tolerance', [
    ('ancestral', 1000, 0.0, 'beta', 0.01), ('ddim', 1000, 0.0, 'beta', 0.01),
    ('ddim', 100, 0.0, 'beta', 0.02), ('ancestral', 1000, 0.0, 'posterior', 0.01)])
def test_samplers_draw_the_data_distribution_given_its_optimal_denoiser(
    sampler, steps, eta, variance, tolerance):
  """With E[eps | x_t] exact, the samples have the data's mean and spread (few steps shrink
  the spread a little: each step uses E[x_0 | x_t], not a draw)."""
  schedule = diffusion.Schedule(diffusion.betas('linear', 1000), variance=variance, clip=False)
  x0 = diffusion.sample_loop(gaussian_denoiser(schedule), schedule, jax.random.key(0),
                             (4000, 1, 1, 1), sampler=sampler, steps=steps, eta=eta)
  assert abs(float(jnp.mean(x0)) - MU) < 0.015
  assert abs(float(jnp.std(x0)) - SD) < tolerance, float(jnp.std(x0))


def test_ddim_with_eta_one_is_the_ancestral_sampler_with_the_posterior_variance():
  """Song et al. 2021, Sec. 4.1: eta = 1 makes the generative process DDPM's, with
  sigma^2 = beta~ (the same draws give the same samples)."""
  schedule = diffusion.Schedule(diffusion.betas('cosine', 100), variance='posterior',
                                clip=False)
  run = lambda sampler, eta: diffusion.sample_loop(
      gaussian_denoiser(schedule), schedule, jax.random.key(3), (64, 2, 2, 1), sampler=sampler,
      steps=30, eta=eta)
  np.testing.assert_allclose(run('ddim', 1.0), run('ancestral', 0.0), atol=2e-5)
  assert not np.allclose(run('ddim', 0.0), run('ancestral', 0.0), atol=1e-2)


def test_samplers_with_a_wrong_denoiser_miss_the_data():
  """The test above can fail: a denoiser for the wrong mean lands on the wrong mean."""
  schedule = diffusion.Schedule(diffusion.betas('linear', 200), clip=False)
  eps_fn = gaussian_denoiser(schedule)
  x0 = diffusion.sample_loop(lambda x, t: eps_fn(x - 0.2, t), schedule, jax.random.key(0),
                             (2000, 1, 1, 1), sampler='ddim', steps=20)
  assert abs(float(jnp.mean(x0)) - MU) > 0.1


def test_trajectory_starts_at_noise_and_ends_at_the_sample():
  schedule = diffusion.Schedule(diffusion.betas('linear', 50), clip=False)
  x0, x_T, path = diffusion.sample_loop(gaussian_denoiser(schedule), schedule,
                                        jax.random.key(1), (300, 1, 1, 1), sampler='ddim',
                                        steps=10, trajectory=True)
  assert path.shape == (10, 300, 1, 1, 1)
  np.testing.assert_array_equal(path[-1], x0)
  assert abs(float(jnp.std(x_T)) - 1.0) < 0.1 and float(jnp.std(x0)) < 0.3


def _point_mass_terms(schedule, x0_value):
  """The bound's terms, by their equations, for a denoiser that knows x_0 exactly."""
  beta, abar = schedule.beta, schedule.abar
  abar_prev = np.append(1.0, abar[:-1])
  post = beta * (1 - abar_prev) / (1 - abar)
  model = beta if schedule.variance == 'beta' else post
  middle = np.sum(0.5 * (-1 + np.log(model[1:]) - np.log(post[1:]) + post[1:] / model[1:]))
  prior = 0.5 * (-1 - np.log(1 - abar[-1]) + (1 - abar[-1]) + abar[-1] * x0_value ** 2)
  scale = np.sqrt(post[1])  # p(x_0 | x_1) uses beta~_2 (beta~_1 = 0), as the reference code
  decoder = -np.log(norm.cdf(1 / 255 / scale) - norm.cdf(-1 / 255 / scale))
  return prior, middle, decoder


@pytest.mark.parametrize('variance', ['beta', 'posterior'])
def test_the_bound_is_exact_over_all_steps_and_unbiased_when_stratified(variance):
  schedule = diffusion.Schedule(diffusion.betas('linear', 100), variance=variance, clip=False)
  value = 2 * 100 / 255 - 1   # an 8-bit level
  x0 = jnp.full((2, 2, 2, 1), value, jnp.float32)
  abar_T = jnp.asarray(schedule.abar, jnp.float32)

  def oracle(x_t, t_B):  # the x_0 of every x_t is `value`
    abar = abar_T[t_B][:, None, None, None]
    return (x_t - jnp.sqrt(abar) * value) / jnp.sqrt(1 - abar)

  prior, middle, decoder = _point_mass_terms(schedule, value)
  got = diffusion.bound_terms(oracle, schedule, x0, jax.random.key(0), num_t=99)
  np.testing.assert_allclose(got[0], 4 * prior, rtol=1e-3, atol=1e-6)
  np.testing.assert_allclose(got[1], 4 * middle, rtol=2e-3, atol=1e-5)
  np.testing.assert_allclose(got[2], 4 * decoder, rtol=1e-3)
  # 33 strata, a random t in each: over 1,000 draws the mean is the exact sum (the standard
  # error is about 1.5% here, the t = 2 term dominating its variance).
  draws = jax.vmap(lambda k: diffusion.bound_terms(oracle, schedule, x0, k, num_t=33)[1])(
      jax.random.split(jax.random.key(1), 1000))
  np.testing.assert_allclose(jnp.mean(draws), 4 * middle, rtol=0.06, atol=1e-4)


# -- the U-Net -------------------------------------------------------------------------------------
@pytest.mark.parametrize('size, mults, patch, attention', [
    (28, (1, 2), 2, (7,)), (28, (1, 2, 2), 1, (7,)), (8, (1, 2, 2), 1, ()), (14, (1, 1, 1), 1, (4,))])
def test_unet_keeps_the_image_shape_and_starts_at_zero(size, mults, patch, attention):
  net = unet.UNet(channels=8, channel_mults=mults, num_res_blocks=1, norm_groups=4,
                  attention_resolutions=attention, patch_size=patch, num_classes=3)
  x = jnp.ones((2, size, size, 3))
  params = net.init(jax.random.key(0), x, jnp.array([0, 5]), jnp.array([0, 3]))
  out = net.apply(params, x, jnp.array([0, 5]), jnp.array([0, 3]))
  assert out.shape == x.shape
  np.testing.assert_array_equal(out, 0.0)  # zero-initialised output conv: eps = 0 at first
  # Away from that start, the output depends on the time step and the label.
  params = jax.tree.map(lambda p: p + 0.05, params)
  outs = [net.apply(params, x, jnp.array(t), jnp.array(y))
          for t, y in (([0, 0], [0, 0]), ([9, 9], [0, 0]), ([0, 0], [3, 3]))]
  assert not np.allclose(outs[0], outs[1]) and not np.allclose(outs[0], outs[2])


def test_unet_patches_must_tile_the_image():
  net = unet.UNet(channels=8, channel_mults=(1,), num_res_blocks=1, norm_groups=4, patch_size=3)
  with pytest.raises(ValueError, match='3x3 patches'):
    net.init(jax.random.key(0), jnp.ones((1, 28, 28, 1)), jnp.zeros((1,), jnp.int32))


def test_timestep_embedding_is_sinusoidal():
  emb = unet.timestep_embedding(jnp.array([0, 3]), 8)
  np.testing.assert_allclose(emb[0], [0, 0, 0, 0, 1, 1, 1, 1], atol=1e-7)
  freqs = np.exp(-np.log(10_000) * np.arange(4) / 3)
  np.testing.assert_allclose(emb[1], np.concatenate([np.sin(3 * freqs), np.cos(3 * freqs)]),
                             rtol=1e-5)


# -- the method ------------------------------------------------------------------------------------
def _trained(config, steps=4):
  method = diffusion.make(config, INFO)
  state = method.init(jax.random.key(0))
  step = jax.jit(method.train_step)
  for i in range(steps):
    state, metrics = step(state, batch(seed=i), jax.random.key(i))
  return method, state, metrics


def test_training_steps_move_the_weights_and_their_average():
  config = tiny_config(**{'optimizer.warmup_steps': 0})
  method, state, metrics = _trained(config)
  assert int(state.step) == 4 and np.isfinite(float(metrics['loss']))
  first = method.init(jax.random.key(0))
  moved = lambda a, b: any(not np.array_equal(x, y) for x, y in
                           zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert moved(first.params, state.params) and moved(first.ema_params, state.ema_params)
  assert moved(state.params, state.ema_params)


def test_batch_split_is_the_same_training_step():
  """4 independent slices (the CPU's 'auto') train as the whole batch does: the same losses and
  gradient norms over steps, up to float32 summation order."""
  runs = {}
  for splits in (1, 4):
    config = tiny_config('ddpm_cond_mnist', **{'optimizer.warmup_steps': 0, 'batch_split': splits})
    method = diffusion.make(config, INFO)
    state, step, seen = method.init(jax.random.key(0)), jax.jit(method.train_step), []
    for i in range(3):
      state, metrics = step(state, batch(seed=i), jax.random.key(i))
      seen.append([float(metrics['loss']), float(metrics['grad_norm'])])
    runs[splits] = seen
  np.testing.assert_allclose(runs[4], runs[1], rtol=1e-4)


def test_eval_reports_the_bound_in_bits_per_dimension():
  method, state, _ = _trained(tiny_config())
  sums = method.eval_step(state, batch(), jax.random.key(0))
  per_image = {k: float(v) / 16 for k, v in sums.items()}
  np.testing.assert_allclose(per_image['bits_per_dim'],
                             per_image['nll_bound'] / (64 * math.log(2)), rtol=1e-5)
  assert 0 < per_image['bits_per_dim'] < 20 and per_image['decoder_nll'] > 0


def test_guidance_changes_the_samples_of_a_conditional_model():
  config = tiny_config('ddpm_cond_mnist', **{'optimizer.warmup_steps': 0,
                                             'optimizer.learning_rate': 1e-2})
  samples = {}
  for w in (0.0, 3.0):
    config.sampler.guidance = w
    method, state, _ = _trained(config)
    samples[w] = np.asarray(method.sample(state, jax.random.key(7), 10))
    assert samples[w].shape == (10, 8, 8, 1) and samples[w].min() >= 0 and samples[w].max() <= 1
  assert not np.allclose(samples[0.0], samples[3.0])


@pytest.mark.parametrize('overrides, words', [
    ({'diffusion.schedule': 'quadratic'}, ('diffusion.schedule', "'linear', 'cosine'")),
    ({'sampler.kind': 'euler'}, ('sampler.kind', "'ancestral', 'ddim'")),
    ({'sampler.steps': 0}, ('sampler.steps', '>= 1')),
    ({'sampler.steps': 21}, ('sampler.steps=21', 'trained with', '1..20')),
    ({'sampler.guidance': 2.0}, ('guidance', 'unconditional')),
    ({'sampler.eta': 1.5}, ('sampler.eta', '[0, 1]')),
])
def test_bad_config_is_one_clear_error(overrides, words):
  with pytest.raises(UserError) as e:
    diffusion.make(tiny_config(**overrides), INFO)
  for word in words:
    assert word in str(e.value), str(e.value)


def test_cli_bad_sampler_is_one_line_and_writes_nothing(data_dir, tmp_path):
  proc = run_cli('--config', 'configs/ddpm_mnist.py:smoke', '--workdir', str(tmp_path / 'w'),
                 '--config.sampler.kind=euler')
  assert_one_line_error(proc, 'sampler.kind', 'ddim')
  assert not (tmp_path / 'w' / 'checkpoints').exists()


def test_resume_is_bit_identical_and_samples_follow_the_config(data_dir, tmp_path):
  """Weights, EMA and optimizer state resume exactly; --mode=sample reads the sampler keys."""
  from genlab import sampling, train  # pylint: disable=g-import-not-at-top
  config = importlib.import_module('configs.ddpm_cond_mnist').get_config('smoke')
  config.eval.sample_metrics = config.eval.test_sample_metrics = ()
  full, partial = str(tmp_path / 'full'), str(tmp_path / 'partial')
  train.train_and_evaluate(config, full)
  shutil.copytree(full, partial)
  shutil.rmtree(os.path.join(partial, 'checkpoints', '20'))
  os.remove(os.path.join(partial, 'results.json'))
  train.train_and_evaluate(config, partial)
  a, b = train.restore(config, full)[1], train.restore(config, partial)[1]
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  assert any(p.startswith('denoising_') for p in os.listdir(os.path.join(full, 'samples')))
  drawn = {}
  for kind, steps in (('ddim', 5), ('ancestral', 20)):
    config.sampler.update(kind=kind, steps=steps)
    out = sampling.sample(config, full, 10, str(tmp_path / f'{kind}.npz'))
    with np.load(out) as f:
      drawn[kind] = f['samples']
  assert drawn['ddim'].shape == (10, 28, 28, 1)
  assert not np.allclose(drawn['ddim'], drawn['ancestral'])
