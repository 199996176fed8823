"""Tests for genlab/metrics/parzen.py: the Parzen window against direct and exact densities."""
import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from genlab.errors import UserError
from genlab.metrics import parzen


def _direct_parzen(samples, x, sigma):
  """Goodfellow et al.'s formula, in float64 numpy from explicit differences."""
  s, x = samples.reshape(len(samples), -1), x.reshape(len(x), -1)
  d2 = np.sum((x[:, None, :] - s[None, :, :])**2, axis=-1)
  d = s.shape[1]
  return (logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(len(s))
          - 0.5 * d * np.log(2 * np.pi * sigma**2))


def test_matches_direct_formula_and_flattens_images():
  rng = np.random.RandomState(0)
  samples, x = rng.rand(37, 2, 3, 1), rng.rand(11, 2, 3, 1)  # (N, H, W, C) images in [0, 1].
  for sigma in (0.1, 0.3, 1.0):
    got = parzen.parzen_log_likelihood(samples, x, sigma)
    assert got.shape == (11,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _direct_parzen(samples, x, sigma), rtol=1e-5, atol=1e-4)


def test_equals_exact_gaussian_mixture_density_when_samples_are_the_centres():
  centres_1d = np.array([[-1.0], [0.5], [2.0]])
  x_1d = np.linspace(-3, 4, 15)[:, None]
  sigma = 0.7
  exact_1d = np.log(np.mean([stats.norm.pdf(x_1d[:, 0], c, sigma) for c in centres_1d[:, 0]], 0))
  np.testing.assert_allclose(parzen.parzen_log_likelihood(centres_1d, x_1d, sigma), exact_1d,
                             rtol=1e-5)
  rng = np.random.RandomState(1)
  centres_2d, x_2d = rng.randn(4, 2), rng.randn(9, 2) * 2
  exact_2d = np.log(np.mean([stats.multivariate_normal.pdf(x_2d, c, 0.5**2 * np.eye(2))
                             for c in centres_2d], 0))
  np.testing.assert_allclose(parzen.parzen_log_likelihood(centres_2d, x_2d, 0.5), exact_2d,
                             rtol=1e-5)


def test_far_points_do_not_underflow():
  # exp(-||x - s||^2 / 2 sigma^2) underflows for every sample; the log-sum-exp must not.
  samples, x = np.zeros((5, 3)), np.full((2, 3), 10.0)
  got = parzen.parzen_log_likelihood(samples, x, 0.1)
  np.testing.assert_allclose(got, _direct_parzen(samples, x, 0.1), rtol=1e-6)
  assert np.all(np.isfinite(got))


def test_chunked_equals_unchunked():
  rng = np.random.RandomState(2)
  samples, x = rng.rand(23, 10), rng.rand(17, 10)
  whole = parzen.parzen_log_likelihood(samples, x, 0.2, chunk=1000)
  for chunk in (1, 5, 16):  # Chunks that do and do not divide N and M.
    np.testing.assert_allclose(parzen.parzen_log_likelihood(samples, x, 0.2, chunk=chunk),
                               whole, rtol=1e-6, atol=1e-5)  # float32 order.


def test_select_sigma_recovers_the_scale_of_a_gaussian_blob():
  rng = np.random.RandomState(3)
  sigmas = parzen.DEFAULT_SIGMAS
  true_sigma = sigmas[4]  # 0.278; its grid neighbours are 0.215 and 0.359.
  centres = rng.rand(50, 10) * 10  # Well-separated centres.
  x_valid = centres[rng.randint(0, 50, 1000)] + true_sigma * rng.randn(1000, 10)
  best, mean_ll = parzen.select_sigma(centres, x_valid, sigmas, chunk=256)
  assert best == pytest.approx(true_sigma)
  assert mean_ll.shape == (10,) and int(np.argmax(mean_ll)) == 4
  # Each entry is the mean log-likelihood at that sigma.
  np.testing.assert_allclose(mean_ll[7], parzen.parzen_log_likelihood(
      centres, x_valid, sigmas[7]).mean(), rtol=1e-6)


def test_parzen_estimate_reports_mean_and_standard_error():
  rng = np.random.RandomState(4)
  samples = rng.rand(60, 8)
  x_valid, x_test = rng.rand(40, 8), rng.rand(30, 8)
  out = parzen.parzen_estimate(samples, x_valid, x_test, sigmas=[0.1, 0.2, 0.4, 0.8])
  expected_sigma = [0.1, 0.2, 0.4, 0.8][int(np.argmax(
      [_direct_parzen(samples, x_valid, s).mean() for s in [0.1, 0.2, 0.4, 0.8]]))]
  assert out['sigma'] == pytest.approx(expected_sigma)
  ll = _direct_parzen(samples, x_test, expected_sigma)
  np.testing.assert_allclose(out['mean'], ll.mean(), rtol=1e-5)
  # Table 1's "+-": std over test examples (ddof=0, as their code) / sqrt(M).
  np.testing.assert_allclose(out['stderr'], np.sqrt(np.mean((ll - ll.mean())**2) / 30), rtol=1e-4)
  assert out['num_samples'] == 60


def test_bad_input_raises_user_error():
  samples = np.zeros((5, 4))
  with pytest.raises(UserError, match='sigma'):
    parzen.parzen_log_likelihood(samples, samples, 0.0)
  with pytest.raises(UserError, match='differ in size'):
    parzen.parzen_log_likelihood(samples, np.zeros((5, 3)), 0.1)
  with pytest.raises(UserError, match='shape'):
    parzen.select_sigma(np.zeros(5), samples)
