"""Tests for genlab/metrics/likelihood.py: each function against a direct computation."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genlab.metrics import likelihood


def test_gaussian_kl_matches_monte_carlo():
  key_m, key_v, key_z = jax.random.split(jax.random.key(0), 3)
  mean_BxZ = jax.random.normal(key_m, (3, 4))
  logvar_BxZ = jax.random.normal(key_v, (3, 4)) * 0.5
  z_SxBxZ = mean_BxZ + jnp.exp(0.5 * logvar_BxZ) * jax.random.normal(key_z, (50_000, 3, 4))
  log_q_SxB = likelihood.log_normal_diag(z_SxBxZ, mean_BxZ, logvar_BxZ)
  mc_kl_B = jnp.mean(log_q_SxB - likelihood.log_normal_diag(z_SxBxZ), axis=0)
  kl_B = likelihood.gaussian_kl(mean_BxZ, logvar_BxZ)
  np.testing.assert_allclose(kl_B, mc_kl_B, atol=0.05)
  assert np.all(np.asarray(kl_B) > 0)
  np.testing.assert_allclose(likelihood.gaussian_kl(jnp.zeros((2, 5)), jnp.zeros((2, 5))), 0.0)


def test_log_normal_diag_matches_scalar_formula():
  z, m, lv = np.array([[0.3, -1.2]]), np.array([[0.1, 0.5]]), np.array([[-0.4, 0.7]])
  s2 = np.exp(lv)
  expected = np.sum(-0.5 * np.log(2 * np.pi * s2) - (z - m)**2 / (2 * s2), axis=-1)
  np.testing.assert_allclose(likelihood.log_normal_diag(z, m, lv), expected, rtol=1e-6)
  np.testing.assert_allclose(likelihood.log_normal_diag(z),
                             np.sum(-0.5 * np.log(2 * np.pi) - z**2 / 2, -1), rtol=1e-6)


def test_bernoulli_log_likelihood_matches_direct_formula():
  rng = np.random.RandomState(0)
  logits = rng.randn(2, 4, 4, 1) * 3
  x = (rng.rand(2, 4, 4, 1) > 0.5).astype(np.float32)
  p = 1 / (1 + np.exp(-logits))
  expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(likelihood.bernoulli_log_likelihood(x, logits), expected, rtol=1e-5)


def test_bernoulli_log_likelihood_is_stable_for_extreme_logits():
  logits = jnp.array([1e4, -1e4, 1e4, -1e4, 100.0, -100.0])
  x = jnp.array([1.0, 0.0, 0.0, 1.0, 0.0, 1.0])
  ll = likelihood.bernoulli_log_likelihood(x, logits, event_ndims=0)
  np.testing.assert_allclose(ll, [0.0, 0.0, -1e4, -1e4, -100.0, -100.0], rtol=1e-6)
  grad = jax.grad(lambda l: likelihood.bernoulli_log_likelihood(x, l, 1))(logits)
  assert np.all(np.isfinite(grad))


def test_gaussian_log_likelihood_matches_formula():
  x, mean, log_scale = np.array([0.2, 0.9]), np.array([0.0, 1.0]), np.array([-1.0, 0.5])
  s = np.exp(log_scale)
  expected = np.sum(-0.5 * np.log(2 * np.pi * s**2) - (x - mean)**2 / (2 * s**2))
  got = likelihood.gaussian_log_likelihood(x, mean, log_scale, event_ndims=1)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_iwae_bound_with_one_sample_is_the_elbo_estimate():
  log_w_B = jnp.array([-3.0, -100.0, 7.5])
  np.testing.assert_allclose(likelihood.iwae_bound(log_w_B[None]), log_w_B, rtol=1e-7)


def test_iwae_bound_is_log_mean_exp_and_at_least_the_mean():
  log_w_KxB = jax.random.normal(jax.random.key(1), (50, 4)) * 3 - 80
  expected = np.log(np.mean(np.exp(np.asarray(log_w_KxB, np.float64)), axis=0))
  bound_B = likelihood.iwae_bound(log_w_KxB)
  np.testing.assert_allclose(bound_B, expected, rtol=1e-5)
  assert np.all(np.asarray(bound_B) >= np.asarray(jnp.mean(log_w_KxB, axis=0)))  # Jensen


@pytest.mark.parametrize('num_samples,chunk', [(60, 10), (60, 7), (60, 60), (60, 500), (1, 1)])
def test_streaming_iwae_bound_equals_unchunked(num_samples, chunk):
  log_w_KxB = jax.random.normal(jax.random.key(2), (num_samples, 3)) * 5 - 200

  def log_weights_fn(i, n):
    return lax.dynamic_slice_in_dim(log_w_KxB, i * min(chunk, num_samples), n, axis=0)

  got = jax.jit(lambda: likelihood.streaming_iwae_bound(log_weights_fn, num_samples, chunk))()
  np.testing.assert_allclose(got, likelihood.iwae_bound(log_w_KxB), rtol=1e-6)


def test_bernoulli_pixel_baseline_by_hand():
  train = np.array([[1, 0], [1, 0], [0, 0], [1, 1]], np.float32)   # 4 images of 2 pixels
  test = np.array([[1, 0], [0, 1]], np.float32)
  # Laplace: p = (3 + 1) / (4 + 2) = 2/3 and p = (1 + 1) / 6 = 1/3.
  nll_1 = -(math.log(2 / 3) + math.log(2 / 3))
  nll_2 = -(math.log(1 / 3) + math.log(1 / 3))
  got = likelihood.bernoulli_pixel_baseline_nll(train, test)
  assert got == pytest.approx((nll_1 + nll_2) / 2, rel=1e-12)
  # A pixel never on in training stays finite when it appears at test time.
  zeros = np.zeros((10, 3, 3, 1))
  assert np.isfinite(likelihood.bernoulli_pixel_baseline_nll(zeros, np.ones((1, 3, 3, 1))))
  with pytest.raises(ValueError):
    likelihood.bernoulli_pixel_baseline_nll(zeros, np.ones((1, 2, 2, 1)))
