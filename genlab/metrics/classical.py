"""Classical (non-neural) baselines for genlab's autoencoders, plus quality and ranking metrics.

An autoencoder result means little unless it beats the obvious classical method at the same
task, measured the same way: PCA for linear compression and reconstruction (Pearson 1901),
k-nearest neighbours for how well a representation groups the classes, and filtering,
total variation and non-local means for denoising. The metrics they are scored with live here
too, so baselines and models share one implementation: PSNR, SSIM (Wang et al. 2004) and AUROC
(for anomaly scores).

Pure numpy/scipy/scikit-learn/scikit-image, no JAX. Images are float in [0, 1] shaped
(N, H, W, C) with C = 1 or 3 unless stated; flat data is (N, D).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage, stats
from skimage import metrics as sk_metrics
from skimage import restoration
from sklearn.neighbors import KNeighborsClassifier

# PSNR caps the per-image MSE below so that an exact match gives a finite 10 log10(R^2 / 1e-10)
# (100 dB at R = 1) instead of +inf, which would poison means over images.
_MIN_MSE = 1e-10
# skimage forces truncate=3.5 with gaussian_weights, i.e. an 11-tap Gaussian at sigma=1.5: the
# paper's 11x11 window. Its win_size then only sets how much border to crop before averaging.
_SSIM_WINDOW = 11


# ----------------------------------------------------------------------------------- PCA


def pca_fit(x_NxD: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
  """-> (mean_D, components_KxD) float64: the top-K principal axes of x (Pearson 1901).

  Projecting onto them is the optimal linear K-dim reconstruction under squared error
  (Eckart-Young): the baseline a linear autoencoder can at best match. Rows are orthonormal,
  ordered by decreasing variance, and signed so each row's largest-magnitude entry is positive
  (an SVD's signs are arbitrary; this makes codes reproducible across runs and machines).
  """
  x = np.asarray(x_NxD, np.float64)
  if x.ndim != 2:
    raise ValueError(f'pca_fit takes flat data (N, D), got shape {x.shape}: reshape images '
                     'with x.reshape(len(x), -1).')
  n, d = x.shape
  if not 1 <= n_components <= min(n, d):
    raise ValueError(f'n_components must be in [1, min(N, D)] = [1, {min(n, d)}] for data of '
                     f'shape {x.shape}, got {n_components}.')
  mean = x.mean(axis=0)
  # Eigenvectors of the scatter matrix rather than an SVD of the data: LAPACK's gesdd fails to
  # converge on some binarized digit sets ("SVD did not converge"), and D x D is small here.
  xc = x - mean
  _, vecs = np.linalg.eigh(xc.T @ xc)
  comps = vecs[:, ::-1][:, :n_components].T
  signs = np.sign(comps[np.arange(n_components), np.argmax(np.abs(comps), axis=1)])
  return mean, comps * np.where(signs == 0, 1.0, signs)[:, None]


def pca_encode(x_NxD: np.ndarray, mean_D: np.ndarray, components_KxD: np.ndarray) -> np.ndarray:
  """-> codes_NxK: coordinates of the centred data along the principal axes (Pearson 1901)."""
  return (np.asarray(x_NxD, np.float64) - mean_D) @ components_KxD.T


def pca_reconstruct(x_NxD: np.ndarray, mean_D: np.ndarray,
                    components_KxD: np.ndarray) -> np.ndarray:
  """-> x_hat_NxD: x projected onto the K-dim principal subspace and mapped back.

  The optimal rank-K linear reconstruction under squared error (Eckart-Young, Pearson 1901);
  its mean squared error per sample is the sum of the discarded covariance eigenvalues.
  """
  return pca_encode(x_NxD, mean_D, components_KxD) @ components_KxD + mean_D


# --------------------------------------------------------------------- kNN and AUROC


def knn_accuracy(train_x_NxD: np.ndarray, train_y_N: np.ndarray, test_x_MxD: np.ndarray,
                 test_y_M: np.ndarray, k: int = 5) -> float:
  """Test accuracy of a Euclidean, uniformly weighted k-NN classifier fitted on train.

  Scores a representation without training anything on it: good codes put same-class points
  close together.
  """
  clf = KNeighborsClassifier(n_neighbors=k, weights='uniform', metric='euclidean')
  clf.fit(np.asarray(train_x_NxD, np.float64), np.asarray(train_y_N))
  return float(clf.score(np.asarray(test_x_MxD, np.float64), np.asarray(test_y_M)))


def auroc(scores_N: np.ndarray, positive_N: np.ndarray) -> float:
  """Area under the ROC curve; a higher score means "more likely positive" (anomalous).

  Computed as the Mann-Whitney U statistic over ranks (ties get average ranks, counting 1/2),
  which equals sklearn.metrics.roc_auc_score without building the curve: the probability that
  a random positive outscores a random negative.
  """
  scores = np.asarray(scores_N, np.float64).ravel()
  positive = np.asarray(positive_N).astype(bool).ravel()
  if scores.shape != positive.shape:
    raise ValueError(f'auroc needs one label per score, got {scores.shape} and {positive.shape}.')
  n_pos = int(positive.sum())
  n_neg = len(positive) - n_pos
  if n_pos == 0 or n_neg == 0:
    raise ValueError(f'AUROC needs both classes, got {n_pos} positives and {n_neg} negatives.')
  rank_sum = stats.rankdata(scores)[positive].sum()
  return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ------------------------------------------------------------------------ PSNR and SSIM


def _images(x) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f'Expected images shaped (N, H, W, C) with C = 1 or 3, got {x.shape}.')
  return x


def psnr(clean_NxHxWxC: np.ndarray, estimate_NxHxWxC: np.ndarray,
         data_range: float = 1.0) -> np.ndarray:
  """-> (N,) per-image PSNR in dB, 10 log10(data_range^2 / MSE).

  MSE is capped below at 1e-10, so identical images give a finite 100 dB (at data_range 1).
  """
  clean = _images(clean_NxHxWxC).astype(np.float64)
  err = clean - _images(estimate_NxHxWxC).astype(np.float64)
  mse = np.maximum(np.mean(err**2, axis=(1, 2, 3)), _MIN_MSE)
  return 10.0 * np.log10(data_range**2 / mse)


def ssim(clean_NxHxWxC: np.ndarray, estimate_NxHxWxC: np.ndarray) -> np.ndarray:
  """-> (N,) per-image mean SSIM (Wang et al. 2004) with the paper's settings.

  An 11x11 Gaussian window with sigma 1.5 and population covariances, data range 1; colour
  images average the per-channel SSIMs. skimage fixes the Gaussian's extent (truncate=3.5) and
  uses win_size only to crop the filter radius before averaging the SSIM map. We crop the
  paper's 5-pixel border (win_size 11, i.e. the 'valid' region) where the image allows and
  otherwise the largest odd win_size that fits: for 8x8 digits that is 7, averaging the
  central 2x2 of a map whose filter sees reflect-padded borders, so SSIMs of images smaller
  than 11 px are comparable only among themselves.
  """
  clean, est = _images(clean_NxHxWxC), _images(estimate_NxHxWxC)
  if clean.shape != est.shape:
    raise ValueError(f'ssim needs equal shapes, got {clean.shape} and {est.shape}.')
  side = min(clean.shape[1:3])
  win = min(_SSIM_WINDOW, side if side % 2 else side - 1)
  colour = clean.shape[-1] == 3
  kw = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            win_size=win, channel_axis=-1 if colour else None)
  sq = (lambda im: im) if colour else (lambda im: im[..., 0])
  return np.array([sk_metrics.structural_similarity(sq(a).astype(np.float64),
                                                    sq(b).astype(np.float64), **kw)
                   for a, b in zip(clean, est)], np.float64)


# ------------------------------------------------------------------ classical denoisers


def _clipped(fn: Callable[[np.ndarray, float], np.ndarray]):
  """Wraps a float64 batch denoiser: checks shape, clips to [0, 1], keeps the input's dtype."""
  def wrapped(noisy: np.ndarray, param: float) -> np.ndarray:
    x = _images(noisy)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return np.clip(fn(x.astype(np.float64), param), 0.0, 1.0).astype(dtype)
  wrapped.__doc__ = fn.__doc__
  return wrapped


def _per_image(fn: Callable[..., np.ndarray], x: np.ndarray) -> np.ndarray:
  """fn(image, channel_axis) on each image: (H, W, 3) with axis -1, or (H, W) for grey."""
  if x.shape[-1] == 3:
    return np.stack([fn(im, -1) for im in x])
  return np.stack([fn(im[..., 0], None) for im in x])[..., None]


@_clipped
def _gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian blur over H and W only: sigma 0 on N and C keeps images and channels apart."""
  return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode='reflect')


@_clipped
def _median_filter(x: np.ndarray, size: float) -> np.ndarray:
  """size x size median over H and W: the classic remedy for salt-and-pepper noise."""
  return ndimage.median_filter(x, size=(1, int(size), int(size), 1), mode='reflect')


@_clipped
def _tv_chambolle(x: np.ndarray, weight: float) -> np.ndarray:
  """Total-variation denoising (Rudin, Osher & Fatemi 1992) by Chambolle's (2004) projection."""
  return _per_image(lambda im, ax: restoration.denoise_tv_chambolle(
      im, weight=weight, channel_axis=ax), x)


@_clipped
def _nl_means(x: np.ndarray, h: float) -> np.ndarray:
  """Non-local means (Buades et al. 2005) with 3x3 patches searched within 5 px."""
  return _per_image(lambda im, ax: restoration.denoise_nl_means(
      im, h=h, patch_size=3, patch_distance=5, fast_mode=True, channel_axis=ax), x)


# name -> (fn(noisy_NxHxWxC, param) -> denoised, candidate params). The grids span the best
# parameters for images in [0, 1] under Gaussian noise sigma 0.1..0.7 or 10-50% salt-and-pepper
# (checked on 28x28 smooth fields and shapes; at the strongest noise the ends are within a few
# tenths of a dB of the optimum, and wider windows would erase 28x28 digits).
DENOISERS: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], tuple[float, ...]]] = {
    'gaussian_filter': (_gaussian_filter, (0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)),
    'median_filter': (_median_filter, (2, 3, 5, 7)),
    'tv_chambolle': (_tv_chambolle, (0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.0, 2.0)),
    'nl_means': (_nl_means, (0.05, 0.1, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5)),
}


def _denoiser(name: str):
  if name not in DENOISERS:
    raise ValueError(f'Unknown denoiser {name!r}; choose one of {sorted(DENOISERS)}.')
  return DENOISERS[name]


def denoise(name: str, noisy: np.ndarray, param: float) -> np.ndarray:
  """Denoises (N, H, W, C) images image by image with DENOISERS[name]; output in [0, 1]."""
  return _denoiser(name)[0](noisy, param)


def tune_denoiser(name: str, noisy_val: np.ndarray, clean_val: np.ndarray) -> tuple[float, float]:
  """-> (param, mean PSNR): the candidate with the highest mean PSNR on validation images.

  The fair baseline: each classical method gets its best parameter for the noise at hand,
  chosen on validation data, never on test. Ties go to the earlier (milder) candidate.
  """
  fn, candidates = _denoiser(name)
  scores = [float(np.mean(psnr(clean_val, fn(noisy_val, p)))) for p in candidates]
  best = int(np.argmax(scores))
  return float(candidates[best]), scores[best]


def classical_denoising(noisy_val: np.ndarray, clean_val: np.ndarray, noisy_test: np.ndarray,
                        clean_test: np.ndarray,
                        names: tuple[str, ...] = tuple(DENOISERS)) -> dict[str, float]:
  """Tunes each denoiser on validation, applies it to test -> flat metrics.

  Keys: 'noisy/psnr', 'noisy/ssim' (the noisy input itself) and, per name, f'{name}/psnr',
  f'{name}/ssim' (test means) and f'{name}/param' (the parameter chosen on validation).
  """
  out = {'noisy/psnr': float(np.mean(psnr(clean_test, noisy_test))),
         'noisy/ssim': float(np.mean(ssim(clean_test, noisy_test)))}
  for name in names:
    param, _ = tune_denoiser(name, noisy_val, clean_val)
    denoised = denoise(name, noisy_test, param)
    out[f'{name}/psnr'] = float(np.mean(psnr(clean_test, denoised)))
    out[f'{name}/ssim'] = float(np.mean(ssim(clean_test, denoised)))
    out[f'{name}/param'] = param
  return out
