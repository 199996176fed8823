"""Gaussian Parzen-window log-likelihood of held-out data under a model's samples, in nats.

The protocol of Goodfellow et al. 2014 (Sec. 5, Table 1), after Breuleux et al. 2011: fit an
isotropic Gaussian kernel density on N generated samples, choose its width sigma on the
validation split, and report the mean log-likelihood of the test split +- its standard error.
It lets models without a tractable likelihood (GANs) be compared with those that have one,
but it is a weak estimate in high dimensions (Theis et al. 2016): compare only at the same N,
sigma grid and pixel scale (images in [0, 1], flattened).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from genlab import log
from genlab.errors import UserError
from genlab.metrics import sample_quality

_DEFAULT_CHUNK = 1024
DEFAULT_SIGMAS = np.logspace(-1, 0, 10)  # Goodfellow et al.'s code: logspace(-1, 0, num=10).


@jax.jit
def _log_kernel_sums_block(x_RxD, samples_BxCxD, valid_BxC, inv_two_var_S):
  """logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) for a block of x and every sigma -> (S, R).

  Streams over sample blocks with a running log-sum-exp, so memory is O(S R C), whatever N.
  """

  def body(acc_SxR, inputs):
    samples_CxD, valid_C = inputs
    x2_R = jnp.sum(x_RxD**2, axis=1)
    s2_C = jnp.sum(samples_CxD**2, axis=1)
    xs_RxC = jnp.matmul(x_RxD, samples_CxD.T, precision=jax.lax.Precision.HIGHEST)
    d2_RxC = jnp.maximum(x2_R[:, None] + s2_C[None, :] - 2.0 * xs_RxC, 0.0)
    logits_SxRxC = -d2_RxC[None] * inv_two_var_S[:, None, None]
    logits_SxRxC = jnp.where(valid_C[None, None, :], logits_SxRxC, -jnp.inf)
    return jnp.logaddexp(acc_SxR, jax.nn.logsumexp(logits_SxRxC, axis=2)), None

  init_SxR = jnp.full((inv_two_var_S.shape[0], x_RxD.shape[0]), -jnp.inf, x_RxD.dtype)
  acc_SxR, _ = jax.lax.scan(body, init_SxR, (samples_BxCxD, valid_BxC))
  return acc_SxR


def _check_sigmas(sigmas) -> np.ndarray:
  sigmas_S = np.atleast_1d(np.asarray(sigmas, np.float64))
  if sigmas_S.ndim != 1 or sigmas_S.size == 0 or not np.all(np.isfinite(sigmas_S)) \
      or np.any(sigmas_S <= 0):
    raise UserError(f'sigma must be positive and finite, got {sigmas!r}: pick e.g. '
                    'np.logspace(-1, 0, 10) for images in [0, 1].')
  return sigmas_S


def _parzen_ll_multi(samples, x, sigmas, chunk: int) -> np.ndarray:
  """(S, M) per-example log p(x) for each sigma in `sigmas`; the distances are shared."""
  samples_NxD = sample_quality.as_features(samples, 'samples')
  x_MxD = sample_quality.as_features(x, 'x')
  if samples_NxD.shape[1] != x_MxD.shape[1]:
    raise UserError(f'samples and x differ in size ({samples_NxD.shape[1]} vs '
                    f'{x_MxD.shape[1]} values per example): pass images of the same shape.')
  sigmas_S = _check_sigmas(sigmas)
  if not isinstance(chunk, (int, np.integer)) or chunk < 1:
    raise UserError(f'chunk={chunk!r} must be a positive integer.')
  (n, d), m = samples_NxD.shape, x_MxD.shape[0]
  centre_D = samples_NxD.mean(axis=0)  # Distances are shift-invariant; centring cuts rounding.
  sample_blocks, valid = sample_quality.pad_to_blocks(samples_NxD - centre_D, min(chunk, n))
  x_blocks, _ = sample_quality.pad_to_blocks(x_MxD - centre_D, min(chunk, m))
  inv_two_var_S = jnp.asarray(1.0 / (2.0 * sigmas_S**2), jnp.float32)
  sums = [_log_kernel_sums_block(x_blocks[b], sample_blocks, valid, inv_two_var_S)
          for b in range(x_blocks.shape[0])]
  log_sums_SxM = np.concatenate([np.asarray(s, np.float64) for s in sums], axis=1)[:, :m]
  # The constants are added in float64: they are large (D/2 log(2 pi sigma^2)) and exact.
  log_norm_S = math.log(n) + 0.5 * d * np.log(2.0 * np.pi * sigmas_S**2)
  return log_sums_SxM - log_norm_S[:, None]


def parzen_log_likelihood(samples_NxD, x_MxD, sigma: float,
                          chunk: int = _DEFAULT_CHUNK) -> np.ndarray:
  """Per-example log p(x) (M,) in nats under the Parzen window of the samples.

  Goodfellow et al. 2014, Sec. 5 (Breuleux et al. 2011), a mixture of N isotropic Gaussians
  of standard deviation sigma centred on the samples s_i:
    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log N - (D/2) log(2 pi sigma^2).
  (N, H, W, C) images are flattened. Squared distances are float32 matrix products in jitted
  `chunk` x `chunk` blocks, the log-sum-exp streamed over sample blocks (memory bounded for
  N = M = 10,000 and D = 784); the result is float64.
  """
  return _parzen_ll_multi(samples_NxD, x_MxD, [sigma], chunk)[0]


def select_sigma(samples, x_valid, sigmas=DEFAULT_SIGMAS,
                 chunk: int = _DEFAULT_CHUNK) -> tuple[float, np.ndarray]:
  """The sigma of `sigmas` with the highest mean validation log-likelihood, and all means (S,).

  Cross-validation as in Goodfellow et al. 2014, Sec. 5 (their code takes the argmax of the
  mean log-likelihood over a logspace(-1, 0, 10) grid on the validation set). All sigmas share
  one pass over the distances. A best sigma at either end of the grid means the grid is too
  narrow: widen it.
  """
  sigmas_S = _check_sigmas(sigmas)
  mean_ll_S = _parzen_ll_multi(samples, x_valid, sigmas_S, chunk).mean(axis=1)
  best = int(np.argmax(mean_ll_S))
  if sigmas_S.min() < sigmas_S.max() and sigmas_S[best] in (sigmas_S.min(), sigmas_S.max()):
    log.warning(f'Parzen sigma {sigmas_S[best]:.4g} is at the end of the grid '
                f'[{sigmas_S.min():.4g}, {sigmas_S.max():.4g}]: widen the grid.')
  return float(sigmas_S[best]), mean_ll_S


def parzen_estimate(samples, x_valid, x_test, sigmas=DEFAULT_SIGMAS,
                    chunk: int = _DEFAULT_CHUNK) -> dict:
  """Goodfellow et al. 2014, Table 1: test mean log-likelihood +- standard error, in nats.

  sigma is chosen on `x_valid` (`select_sigma`); 'stderr' is std / sqrt(M) over the M test
  examples with numpy's std (ddof=0), as their code computes the "+-" of Table 1. Returns
  {'mean', 'stderr', 'sigma', 'num_samples'} as python floats (num_samples an int, N).
  """
  sigma, _ = select_sigma(samples, x_valid, sigmas, chunk)
  ll_M = parzen_log_likelihood(samples, x_test, sigma, chunk)
  return {'mean': float(ll_M.mean()), 'stderr': float(ll_M.std() / math.sqrt(ll_M.shape[0])),
          'sigma': sigma, 'num_samples': int(np.shape(samples)[0])}
