"""Likelihood metrics as pure functions, in nats.

Log-likelihoods sum over the trailing `event_ndims` axes (3 for (H, W, C) images) and keep
the leading ones, so log p(x|z) of K importance samples of a batch comes out as (K, B).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_LOG_2PI = math.log(2 * math.pi)


def _sum_event(x: jax.Array, event_ndims: int) -> jax.Array:
  return jnp.sum(x, axis=tuple(range(-event_ndims, 0))) if event_ndims else x


def gaussian_kl(mean_BxZ: jax.Array, logvar_BxZ: jax.Array) -> jax.Array:
  """KL(N(mean, diag(exp(logvar))) || N(0, I)) over the last axis -> (B,).

  Kingma & Welling 2014, Eq. 10 (Appendix B): -KL = 1/2 sum_j (1 + log s_j^2 - m_j^2 - s_j^2).
  """
  return -0.5 * jnp.sum(1.0 + logvar_BxZ - mean_BxZ**2 - jnp.exp(logvar_BxZ), axis=-1)


def log_normal_diag(z_NxZ: jax.Array, mean_NxZ: jax.Array | float = 0.0,
                    logvar_NxZ: jax.Array | float = 0.0) -> jax.Array:
  """log N(z; mean, diag(exp(logvar))) summed over the last axis; defaults give N(0, I)."""
  logvar_NxZ = jnp.broadcast_to(logvar_NxZ, jnp.shape(z_NxZ))
  return -0.5 * jnp.sum(
      _LOG_2PI + logvar_NxZ + (z_NxZ - mean_NxZ)**2 * jnp.exp(-logvar_NxZ), axis=-1)


def bernoulli_log_likelihood(x: jax.Array, logits: jax.Array,
                             event_ndims: int = 3) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) = x * l - softplus(l), summed over the event axes.

  Stable for any finite logits (no log of a probability that underflows to 0), and valid for
  x in [0, 1] (the cross-entropy of grey levels), as in Kingma & Welling 2014, Appendix C.1.
  """
  return _sum_event(x * logits - jax.nn.softplus(logits), event_ndims)


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_scale: jax.Array | float,
                            event_ndims: int = 3) -> jax.Array:
  """log N(x; mean, exp(log_scale)^2) per element, summed over the event axes.

  `log_scale` is the log standard deviation (Kingma & Welling 2014, Appendix C.2).
  """
  z = (x - mean) * jnp.exp(-log_scale)
  return _sum_event(-0.5 * (_LOG_2PI + z**2) - log_scale, event_ndims)


def iwae_bound(log_weights_KxB: jax.Array) -> jax.Array:
  """log (1/K) sum_k w_k, with log w_k = log p(x, z_k) - log q(z_k|x) -> (B,).

  Burda et al. 2016, Eq. 8. With K=1 it is the one-sample ELBO estimate; it never decreases
  in expectation as K grows and tends to log p(x).
  """
  num_samples = log_weights_KxB.shape[0]
  return jax.nn.logsumexp(log_weights_KxB, axis=0) - math.log(num_samples)


def streaming_iwae_bound(log_weights_fn: Callable[[jax.Array, int], jax.Array],
                         num_samples: int, chunk_size: int) -> jax.Array:
  """The IWAE bound (Burda et al. 2016, Eq. 8) over `num_samples` weights drawn in chunks.

  `log_weights_fn(i, n)` returns the (n, B) log-weights of chunk `i` (a traced int32; derive
  the chunk's random key from it, e.g. `fold_in(key, i)`), `n` a static chunk size. The log-sum-
  exp is accumulated over a `lax.scan` of full chunks (plus one smaller last chunk when
  `chunk_size` does not divide `num_samples`), so memory is O(chunk_size), not O(num_samples).
  Equals `iwae_bound` of the concatenated chunks.
  """
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples={num_samples} and chunk_size={chunk_size} must be >= 1')
  chunk = min(chunk_size, num_samples)
  num_full, rest = divmod(num_samples, chunk)

  def lse(i, n):
    return jax.nn.logsumexp(log_weights_fn(i, n), axis=0)

  def body(acc_B, i):
    return jnp.logaddexp(acc_B, lse(i, chunk)), None

  acc_B = lse(jnp.int32(0), chunk)
  if num_full > 1:
    acc_B, _ = lax.scan(body, acc_B, jnp.arange(1, num_full, dtype=jnp.int32))
  if rest:
    acc_B = jnp.logaddexp(acc_B, lse(jnp.int32(num_full), rest))
  return acc_B - math.log(num_samples)


def bernoulli_pixel_baseline_nll(train_images: np.ndarray, test_images: np.ndarray,
                                 pseudocount: float = 1.0) -> float:
  """Mean test NLL (nats per image) of independent Bernoulli pixels fitted on `train_images`.

  p_d = (sum_n x_nd + a) / (N + 2a): the maximum-likelihood pixel means with `a` pseudo-counts
  of each value (a=1 is Laplace's rule of succession), so a pixel never on in training costs
  a finite -log(1 - p_d) ~ a/N nats. The model ignores every dependency between pixels: the
  floor any generative model of the data should beat clearly. Images in [0, 1]; grey values
  are scored with the same cross-entropy as `bernoulli_log_likelihood`.
  """
  if pseudocount <= 0:
    raise ValueError(f'pseudocount must be > 0 (else unseen pixels cost inf), got {pseudocount}')
  train = np.asarray(train_images, np.float64).reshape(len(train_images), -1)
  test = np.asarray(test_images, np.float64).reshape(len(test_images), -1)
  if train.shape[1] != test.shape[1]:
    raise ValueError(f'train and test images differ in size: {train.shape} vs {test.shape}')
  p_D = (train.sum(axis=0) + pseudocount) / (len(train) + 2.0 * pseudocount)
  log_lik_N = test @ np.log(p_D) + (1.0 - test) @ np.log1p(-p_D)
  return float(-log_lik_N.mean())
