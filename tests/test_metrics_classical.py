"""Tests for genlab/metrics/classical.py: PCA, kNN, AUROC, PSNR/SSIM and classical denoisers."""
import numpy as np
import pytest
from scipy import ndimage, signal
from sklearn.metrics import roc_auc_score

from genlab.metrics import classical


def _smooth_images(rng, n, h=28, w=28, c=1, blur=2.5):
  """Blurred Gaussian random fields rescaled per image to [0.1, 0.9]: easy prey for denoisers."""
  f = ndimage.gaussian_filter(rng.randn(n, h, w, c), (0, blur, blur, 0))
  lo, hi = f.min(axis=(1, 2, 3), keepdims=True), f.max(axis=(1, 2, 3), keepdims=True)
  return 0.1 + 0.8 * (f - lo) / (hi - lo)


# ----------------------------------------------------------------------------------- PCA


def test_pca_reconstructs_data_in_a_3d_subspace_exactly_with_orthonormal_components():
  rng = np.random.RandomState(0)
  x = rng.randn(50, 3) @ rng.randn(3, 12) + rng.randn(12)
  mean, comps = classical.pca_fit(x, 3)
  assert mean.shape == (12,) and comps.shape == (3, 12) and comps.dtype == np.float64
  np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-12)
  np.testing.assert_allclose(classical.pca_reconstruct(x, mean, comps), x, atol=1e-10)
  assert classical.pca_encode(x, mean, comps).shape == (50, 3)


def test_pca_error_is_the_sum_of_discarded_eigenvalues_and_codes_are_ordered_by_variance():
  rng = np.random.RandomState(1)
  x = rng.randn(200, 8) @ np.diag([5, 4, 3, 2, 1.5, 1, 0.5, 0.2]) @ np.linalg.qr(rng.randn(8, 8))[0]
  eig = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
  errors = []
  for k in range(1, 9):
    mean, comps = classical.pca_fit(x, k)
    np.testing.assert_allclose(comps @ comps.T, np.eye(k), atol=1e-10)
    err = np.mean(np.sum((x - classical.pca_reconstruct(x, mean, comps))**2, axis=1))
    np.testing.assert_allclose(err, eig[k:].sum(), rtol=1e-8, atol=1e-10)
    errors.append(err)
  assert np.all(np.diff(errors) <= 1e-12)
  codes = classical.pca_encode(x, *classical.pca_fit(x, 8))
  np.testing.assert_allclose(codes.var(axis=0), eig, rtol=1e-8)


@pytest.mark.parametrize('k', [0, -1, 7, 11])
def test_pca_fit_rejects_impossible_component_counts(k):
  with pytest.raises(ValueError, match='n_components'):
    classical.pca_fit(np.random.RandomState(0).randn(6, 10), k)


# ----------------------------------------------------------------------- kNN and AUROC


def test_knn_accuracy_is_perfect_on_well_separated_clusters():
  rng = np.random.RandomState(2)
  centres = np.eye(4) * 20
  y_train, y_test = rng.randint(0, 4, 80), rng.randint(0, 4, 30)
  x_train = centres[y_train] + rng.randn(80, 4)
  x_test = centres[y_test] + rng.randn(30, 4)
  assert classical.knn_accuracy(x_train, y_train, x_test, y_test, k=5) == 1.0


@pytest.mark.parametrize('k', [1, 3, 7])
def test_knn_accuracy_matches_brute_force_numpy(k):
  rng = np.random.RandomState(k)
  x_train, y_train = rng.randn(60, 5), rng.randint(0, 2, 60)  # Two classes, odd k: no vote ties.
  x_test, y_test = rng.randn(40, 5), rng.randint(0, 2, 40)
  d2 = np.sum((x_test[:, None] - x_train[None])**2, axis=-1)
  votes = y_train[np.argsort(d2, axis=1)[:, :k]]
  predicted = (votes.mean(axis=1) > 0.5).astype(int)
  expected = np.mean(predicted == y_test)
  assert 0.0 < expected < 1.0
  assert classical.knn_accuracy(x_train, y_train, x_test, y_test, k=k) == pytest.approx(expected)


def test_auroc_matches_sklearn_with_ties():
  rng = np.random.RandomState(3)
  for _ in range(5):
    scores = rng.randint(0, 6, 300).astype(float)  # Many ties.
    positive = rng.rand(300) < 0.3 + 0.05 * scores
    assert classical.auroc(scores, positive) == pytest.approx(roc_auc_score(positive, scores))


def test_auroc_obvious_cases_and_single_class():
  positive = np.array([0, 0, 0, 1, 1], bool)
  assert classical.auroc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), positive) == 1.0
  assert classical.auroc(np.array([0.9, 0.8, 0.7, 0.2, 0.1]), positive) == 0.0
  assert classical.auroc(np.full(5, 0.4), positive) == 0.5
  with pytest.raises(ValueError, match='both classes'):
    classical.auroc(np.arange(4.0), np.zeros(4, bool))
  with pytest.raises(ValueError, match='both classes'):
    classical.auroc(np.arange(4.0), np.ones(4, bool))


# ------------------------------------------------------------------------ PSNR and SSIM


def test_psnr_closed_form_for_a_constant_error():
  rng = np.random.RandomState(4)
  clean = rng.rand(3, 8, 8, 1) * 0.5
  errors = np.array([0.01, 0.05, 0.2])[:, None, None, None]
  got = classical.psnr(clean, clean + errors)
  assert got.shape == (3,)
  np.testing.assert_allclose(got, 10 * np.log10(1.0 / errors.ravel()**2))
  np.testing.assert_allclose(classical.psnr(clean, clean + errors, data_range=2.0),
                             10 * np.log10(4.0 / errors.ravel()**2))
  exact = classical.psnr(clean, clean)
  assert np.all(np.isfinite(exact)) and np.all(exact > got.max())


def _wang_ssim_valid(a_HxW, b_HxW):
  """Wang et al. 2004 directly: 11x11 Gaussian window (sigma 1.5), 'valid' region only."""
  g = np.exp(-np.arange(-5, 6)**2 / (2 * 1.5**2))
  win = np.outer(g, g) / np.outer(g, g).sum()
  f = lambda im: signal.correlate2d(im, win, mode='valid')
  mu_a, mu_b = f(a_HxW), f(b_HxW)
  va, vb, cov = f(a_HxW**2) - mu_a**2, f(b_HxW**2) - mu_b**2, f(a_HxW * b_HxW) - mu_a * mu_b
  c1, c2 = 0.01**2, 0.03**2
  return np.mean((2 * mu_a * mu_b + c1) * (2 * cov + c2)
                 / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2)))


def test_ssim_matches_the_papers_definition_on_28x28():
  rng = np.random.RandomState(5)
  clean = _smooth_images(rng, 3)
  noisy = clean + 0.1 * rng.randn(*clean.shape)
  expected = [_wang_ssim_valid(a[..., 0], b[..., 0]) for a, b in zip(clean, noisy)]
  np.testing.assert_allclose(classical.ssim(clean, noisy), expected, rtol=1e-6)


@pytest.mark.parametrize('shape', [(28, 28, 1), (8, 8, 1), (16, 16, 3), (5, 5, 1)])
def test_ssim_is_one_for_identical_images_and_falls_with_noise(shape):
  rng = np.random.RandomState(6)
  clean = _smooth_images(rng, 4, *shape, blur=1.0)
  assert classical.ssim(clean, clean).shape == (4,)
  np.testing.assert_allclose(classical.ssim(clean, clean), 1.0, atol=1e-12)
  noise = rng.randn(*clean.shape)
  means = [classical.ssim(clean, clean + s * noise).mean() for s in (0.0, 0.05, 0.2, 0.5)]
  assert np.all(np.diff(means) < 0), means


# ------------------------------------------------------------------ classical denoisers


@pytest.mark.parametrize('name', list(classical.DENOISERS))
def test_each_tuned_denoiser_beats_the_noisy_input_under_gaussian_noise(name):
  rng = np.random.RandomState(7)
  for shape in ((28, 28, 1), (16, 16, 3)):
    clean_val, clean_test = _smooth_images(rng, 6, *shape), _smooth_images(rng, 6, *shape)
    noisy_val = clean_val + 0.2 * rng.randn(*clean_val.shape)
    noisy_test = (clean_test + 0.2 * rng.randn(*clean_test.shape)).astype(np.float32)
    param, _ = classical.tune_denoiser(name, noisy_val, clean_val)
    out = classical.denoise(name, noisy_test, param)
    assert out.shape == noisy_test.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    gain = classical.psnr(clean_test, out) - classical.psnr(clean_test, noisy_test)
    assert np.all(gain > 3.0), (name, shape, param, gain)


@pytest.mark.parametrize('name', list(classical.DENOISERS))
def test_denoisers_work_image_by_image_and_channel_by_channel(name):
  rng = np.random.RandomState(8)
  x = rng.rand(3, 12, 12, 3)
  x[1, ..., 1] = 0.0  # Zero channel next to noise: a blur across channels would lift it.
  param = classical.DENOISERS[name][1][2]
  batch = classical.denoise(name, x, param)
  for i in range(3):
    np.testing.assert_allclose(batch[i], classical.denoise(name, x[i:i + 1], param)[0])
  if name != 'nl_means':  # NL-means weighs patches by distance over all channels.
    np.testing.assert_array_equal(batch[1, ..., 1], 0.0)


def test_median_filter_removes_salt_and_pepper():
  rng = np.random.RandomState(9)
  clean = _smooth_images(rng, 6)
  noisy = clean.copy()
  hit = rng.rand(*clean.shape) < 0.2
  noisy[hit] = rng.rand(hit.sum()) < 0.5
  gain = (classical.psnr(clean, classical.denoise('median_filter', noisy, 3))
          - classical.psnr(clean, noisy))
  assert np.all(gain > 10.0), gain


def test_tune_denoiser_picks_the_best_candidate():
  rng = np.random.RandomState(10)
  clean = _smooth_images(rng, 5, 16, 16)
  noisy = clean + 0.3 * rng.randn(*clean.shape)
  for name in ('gaussian_filter', 'tv_chambolle'):
    candidates = classical.DENOISERS[name][1]
    scores = [classical.psnr(clean, classical.denoise(name, noisy, p)).mean() for p in candidates]
    param, best = classical.tune_denoiser(name, noisy, clean)
    assert param == candidates[int(np.argmax(scores))] and best == pytest.approx(max(scores))
    assert param not in (candidates[0], candidates[-1])  # The grid brackets the optimum here.
  with pytest.raises(ValueError, match='Unknown denoiser'):
    classical.tune_denoiser('wiener', noisy, clean)


def test_classical_denoising_returns_the_documented_metrics():
  rng = np.random.RandomState(11)
  clean_val, clean_test = _smooth_images(rng, 4, 16, 16), _smooth_images(rng, 4, 16, 16)
  noisy_val = clean_val + 0.2 * rng.randn(*clean_val.shape)
  noisy_test = clean_test + 0.2 * rng.randn(*clean_test.shape)
  got = classical.classical_denoising(noisy_val, clean_val, noisy_test, clean_test)
  names = list(classical.DENOISERS)
  assert set(got) == {'noisy/psnr', 'noisy/ssim'} | {
      f'{n}/{m}' for n in names for m in ('psnr', 'ssim', 'param')}
  assert got['noisy/psnr'] == pytest.approx(classical.psnr(clean_test, noisy_test).mean())
  assert got['noisy/ssim'] == pytest.approx(classical.ssim(clean_test, noisy_test).mean())
  for n in names:
    assert got[f'{n}/param'] == classical.tune_denoiser(n, noisy_val, clean_val)[0]
    assert got[f'{n}/psnr'] > got['noisy/psnr'] and got[f'{n}/ssim'] > got['noisy/ssim']
  only = classical.classical_denoising(noisy_val, clean_val, noisy_test, clean_test,
                                       names=('median_filter',))
  assert set(only) == {'noisy/psnr', 'noisy/ssim', 'median_filter/psnr', 'median_filter/ssim',
                       'median_filter/param'}
