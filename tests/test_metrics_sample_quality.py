"""Tests for genlab/metrics/sample_quality.py: closed forms, reference formulas, brute force."""
import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from genlab.errors import UserError
from genlab.metrics import sample_quality as sq


def _random_psd(rng, d, rank=None):
  a = rng.randn(d, rank or d)
  return a @ a.T / d + (0 if rank else 0.1 * np.eye(d))


# ------------------------------------------------------------------------------------- FID


def test_gaussian_stats_is_mean_and_unbiased_covariance():
  x = np.random.RandomState(0).randn(7, 3)
  mean, cov = sq.gaussian_stats(x)
  centred = x - x.sum(0) / 7
  np.testing.assert_allclose(mean, x.sum(0) / 7)
  np.testing.assert_allclose(cov, centred.T @ centred / 6)  # N - 1, as np.cov in TTUR.
  assert mean.dtype == np.float64 and cov.shape == (3, 3)


def test_fid_of_a_set_with_itself_is_zero_and_shift_gives_squared_norm():
  rng = np.random.RandomState(0)
  x = rng.randn(400, 16) @ rng.randn(16, 16)
  assert sq.fid(x, x) < 1e-8
  shift = rng.randn(16)
  # Same covariance, means differ by `shift`: FID = ||shift||^2 exactly.
  np.testing.assert_allclose(sq.fid(x, x + shift), shift @ shift, rtol=1e-8)


def test_frechet_distance_of_shifted_gaussians_with_equal_covariance():
  rng = np.random.RandomState(1)
  cov = _random_psd(rng, 10)
  mu, shift = rng.randn(10), rng.randn(10)
  np.testing.assert_allclose(sq.frechet_distance(mu, cov, mu + shift, cov), shift @ shift,
                             rtol=1e-8)


def test_frechet_distance_of_diagonal_gaussians_has_closed_form():
  # Commuting covariances: Tr (C1 C2)^{1/2} = sum sqrt(a b), so d^2 = |dmu|^2 + sum (sqrt a -
  # sqrt b)^2; zero variances (a singular covariance) included.
  a = np.array([0.5, 2.0, 3.0, 0.0, 1.0])
  b = np.array([1.5, 0.2, 3.0, 4.0, 0.0])
  mu1, mu2 = np.zeros(5), np.array([1.0, 0.0, -2.0, 0.0, 0.5])
  expected = np.sum((mu1 - mu2)**2) + np.sum((np.sqrt(a) - np.sqrt(b))**2)
  np.testing.assert_allclose(sq.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), expected,
                             rtol=1e-10)


def test_frechet_distance_is_symmetric_and_matches_scipy_sqrtm():
  rng = np.random.RandomState(2)
  d = 20
  mu1, mu2 = rng.randn(d), rng.randn(d)
  cov1, cov2 = _random_psd(rng, d), _random_psd(rng, d)
  got = sq.frechet_distance(mu1, cov1, mu2, cov2)
  # The TTUR reference: Tr sqrtm(C1 C2), a non-symmetric square root.
  ref = (np.sum((mu1 - mu2)**2) + np.trace(cov1) + np.trace(cov2)
         - 2 * np.trace(scipy.linalg.sqrtm(cov1 @ cov2)).real)
  np.testing.assert_allclose(got, ref, rtol=1e-8)
  np.testing.assert_allclose(sq.frechet_distance(mu2, cov2, mu1, cov1), got, rtol=1e-10)
  assert got > 1.0  # Different Gaussians: clearly away from the 0 clip.


def test_frechet_distance_with_rank_deficient_covariances_is_finite():
  # Fewer samples than dimensions (a small eval set): covariances are singular.
  rng = np.random.RandomState(3)
  fa, fb = rng.randn(10, 30), rng.randn(10, 30) + 0.1
  value = sq.fid(fa, fb)
  assert np.isfinite(value) and value > 0
  assert sq.fid(fa, fa) < 1e-8


def test_fid_bad_input_raises_user_error():
  with pytest.raises(UserError, match='differ in dimension'):
    sq.fid(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(UserError, match='at least 2'):
    sq.fid(np.zeros((1, 3)), np.zeros((5, 3)))
  with pytest.raises(UserError, match='NaN'):
    sq.fid(np.full((5, 3), np.nan), np.zeros((5, 3)))


# ------------------------------------------------------------------------- classifier score


def _kid_reference(x, y):
  """Binkowski et al.'s unbiased MMD^2 with the cubic kernel, written out term by term."""
  d, m = x.shape[1], len(x)
  k = lambda a, b: (a @ b / d + 1) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_and_near_zero_for_one_distribution():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
  mean, std = sq.kid(x, y, num_subsets=1, subset_size=12)
  np.testing.assert_allclose(mean, _kid_reference(x, y), rtol=1e-10)
  assert std == 0.0
  same, _ = sq.kid(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)), num_subsets=20,
                   subset_size=200)
  shifted, _ = sq.kid(rng.normal(size=(400, 8)), rng.normal(size=(400, 8)) + 1.0,
                      num_subsets=20, subset_size=200)
  assert abs(same) < 0.01 * shifted  # 0.02 against 7.5 here
  with pytest.raises(UserError, match='differ in dimension'):
    sq.kid(x, y[:, :3])


def test_classifier_score_is_k_for_confident_uniform_predictions():
  k, splits = 10, 5
  probs = np.eye(k)[np.arange(k * splits * 4) % k]  # Each split holds every class equally.
  mean, std = sq.classifier_score(probs, num_splits=splits)
  np.testing.assert_allclose(mean, k, rtol=1e-12)
  assert std < 1e-12


def test_classifier_score_is_one_for_identical_predictions():
  probs = np.tile([0.1, 0.6, 0.3], (50, 1))
  mean, std = sq.classifier_score(probs, num_splits=5)
  np.testing.assert_allclose(mean, 1.0, rtol=1e-12)
  assert std < 1e-12
  mean, _ = sq.classifier_score(np.eye(4)[np.zeros(40, int)], num_splits=4)  # All one class.
  np.testing.assert_allclose(mean, 1.0, rtol=1e-12)


def test_classifier_score_matches_reference_implementation():
  rng = np.random.RandomState(0)
  probs = rng.dirichlet(np.full(6, 0.3), size=103)  # 103 rows: splits of unequal size.
  scores = []
  for i in range(4):  # Salimans et al.'s reference loop.
    part = probs[i * 103 // 4:(i + 1) * 103 // 4]
    kl = part * (np.log(part) - np.log(part.mean(0, keepdims=True)))
    scores.append(np.exp(np.mean(np.sum(kl, 1))))
  mean, std = sq.classifier_score(probs, num_splits=4)
  np.testing.assert_allclose([mean, std], [np.mean(scores), np.std(scores)], rtol=1e-10)
  assert 1.0 < mean < 6.0


def test_classifier_score_rejects_logits_and_bad_splits():
  with pytest.raises(UserError, match='not logits'):
    sq.classifier_score(np.random.RandomState(0).randn(20, 3))
  with pytest.raises(UserError, match='num_splits'):
    sq.classifier_score(np.full((5, 2), 0.5), num_splits=10)


# --------------------------------------------------------------------------- class coverage


def test_class_coverage_counts_modes_and_kl_to_uniform():
  probs = np.eye(5)[[0, 0, 1, 3]] * 0.8 + 0.04  # argmax classes 0, 0, 1, 3 of K = 5.
  out = sq.class_coverage(probs)
  h = np.array([0.5, 0.25, 0.25])  # Classes 2 and 4 are never hit: 0 log 0 = 0.
  assert out['modes'] == 3
  np.testing.assert_allclose(out['coverage'], 0.6)
  np.testing.assert_allclose(out['kl_to_reference'], np.sum(h * np.log(h / 0.2)), rtol=1e-12)
  full = sq.class_coverage(np.eye(5)[np.arange(20) % 5])
  assert full['modes'] == 5 and full['coverage'] == 1.0 and full['kl_to_reference'] == 0.0


def test_class_coverage_with_reference_frequencies():
  probs = np.eye(3)[[0, 0, 0, 1]]
  same = sq.class_coverage(probs, reference_probs_K=[30, 10, 0])  # Normalised: [.75, .25, 0].
  assert abs(same['kl_to_reference']) < 1e-12 and same['modes'] == 2
  other = sq.class_coverage(probs, reference_probs_K=[0.25, 0.25, 0.5])
  np.testing.assert_allclose(other['kl_to_reference'],
                             0.75 * np.log(0.75 / 0.25) + 0.25 * np.log(1.0), rtol=1e-12)
  # Samples hit a class the reference never has: the KL is infinite, not NaN.
  assert sq.class_coverage(probs, reference_probs_K=[0.0, 1.0, 0.0])['kl_to_reference'] == np.inf
  with pytest.raises(UserError, match='reference_probs_K'):
    sq.class_coverage(probs, reference_probs_K=[0.5, 0.5])


# ----------------------------------------------------------------------- precision / recall


def _brute_force_radii(x, k):
  d = cdist(x, x)
  np.fill_diagonal(d, np.inf)  # Exclude the point itself (by index).
  return np.sort(d, axis=1)[:, k - 1]


@pytest.mark.parametrize('chunk', [1, 7, 1000])
def test_knn_radii_match_brute_force(chunk):
  rng = np.random.RandomState(0)
  x = rng.randn(53, 4) * 3 + 10
  x[5] = x[17]  # An exact duplicate is a neighbour at distance 0.
  for k in (1, 3):
    got = sq.knn_radii(x, k=k, chunk=chunk)
    np.testing.assert_allclose(got, _brute_force_radii(x, k), rtol=1e-4, atol=1e-3)
  assert sq.knn_radii(x, k=1, chunk=chunk)[5] < 1e-3


@pytest.mark.parametrize('chunk', [16, 1000])
def test_precision_recall_match_brute_force(chunk):
  rng = np.random.RandomState(1)
  real, fake = rng.randn(90, 6), rng.randn(70, 6) * 1.3 + 0.4
  k = 3
  d = cdist(real, fake)
  expected_precision = np.mean(np.any(d <= _brute_force_radii(real, k)[:, None], axis=0))
  expected_recall = np.mean(np.any(d <= _brute_force_radii(fake, k)[None, :], axis=1))
  got = sq.precision_recall(real, fake, k=k, chunk=chunk)
  assert got == {'precision': pytest.approx(expected_precision),
                 'recall': pytest.approx(expected_recall)}
  assert 0.0 < got['precision'] < 1.0 and 0.0 < got['recall'] < 1.0  # A non-trivial case.


def test_precision_recall_identical_and_far_away_sets():
  x = np.random.RandomState(2).randn(200, 8)
  assert sq.precision_recall(x, x, chunk=64) == {'precision': 1.0, 'recall': 1.0}
  assert sq.precision_recall(x, x + 100.0, chunk=64) == {'precision': 0.0, 'recall': 0.0}


def test_recall_drops_for_a_mode_collapsed_fake_set():
  rng = np.random.RandomState(3)
  centres = np.array([[-10.0, 0.0], [10.0, 0.0]])
  real = centres[np.arange(600) % 2] + rng.randn(600, 2)
  fake = centres[0] + rng.randn(600, 2)  # Covers only the first of the two modes.
  out = sq.precision_recall(real, fake, k=3, chunk=128)
  assert out['precision'] > 0.9
  assert 0.4 < out['recall'] < 0.52
  both = sq.precision_recall(real, centres[np.arange(600) % 2] + rng.randn(600, 2), chunk=128)
  assert both['recall'] > 0.9


def test_precision_recall_bad_input_raises_user_error():
  with pytest.raises(UserError, match='more than k points'):
    sq.precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)
  with pytest.raises(UserError, match='differ in dimension'):
    sq.precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))
  with pytest.raises(UserError, match='k=0'):
    sq.knn_radii(np.zeros((10, 2)), k=0)
