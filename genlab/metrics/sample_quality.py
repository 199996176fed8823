"""Sample-quality metrics as pure functions of classifier features and class probabilities.

For digits the features are the penultimate layer of a digit classifier and the
probabilities its softmax, as Inception's pool3 features and softmax are for natural images:
the metrics are "FID-in-domain" and a "classifier score", comparable across genlab models
that use the same classifier, not with numbers computed on Inception.

  gaussian_stats, frechet_distance, fid   Heusel et al. 2017 (TTUR), Eq. 6
  kid                                      Binkowski et al. 2018, unbiased MMD^2, cubic kernel
  classifier_score                         Salimans et al. 2016, the Inception Score
  class_coverage                           modes hit and KL to the class prior (VEEGAN, PacGAN)
  knn_radii, precision_recall              Kynkaanniemi et al. 2019, Eq. 1-3

Inputs may be numpy or jax arrays; results are python floats (dicts of them) computed in
float64, except the k-NN distances, which are jitted float32 matrix products in memory-bounded
chunks (N up to 10,000 x D up to 784 in seconds on a CPU).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from genlab.errors import UserError

_DEFAULT_CHUNK = 1024


def as_features(x, name: str, min_rows: int = 1) -> np.ndarray:
  """`x` as a float64 (N, D) array: (N, ...) inputs such as (N, H, W, C) images are flattened.

  Raises UserError for fewer than `min_rows` rows, a 0-d/1-d array or non-finite values, so a
  wrong argument stops with one line instead of a shape error deep inside jit.
  """
  x = np.asarray(x, dtype=np.float64)
  if x.ndim < 2:
    raise UserError(f'{name} has shape {x.shape}: pass a batch of shape (N, D) or (N, H, W, C).')
  x = x.reshape(x.shape[0], -1)
  if x.shape[0] < min_rows:
    raise UserError(f'{name} has {x.shape[0]} rows: this metric needs at least {min_rows}.')
  if x.shape[1] == 0:
    raise UserError(f'{name} has shape {x.shape}: each row needs at least one feature.')
  if not np.all(np.isfinite(x)):
    raise UserError(f'{name} contains NaN or inf: check the model or classifier that made it.')
  return x


def _check_probs(probs, name: str) -> np.ndarray:
  """`probs` as float64 (N, K) rows of a distribution (non-negative, each summing to 1)."""
  p = np.asarray(probs, dtype=np.float64)
  if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 1:
    raise UserError(f'{name} has shape {p.shape}: pass class probabilities of shape (N, K).')
  if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(1), 1.0, atol=1e-3):
    raise UserError(f'{name} rows are not probabilities (non-negative, summing to 1): pass '
                    'softmax outputs, not logits.')
  return p


def _rel_entr(p, q) -> np.ndarray:
  """Elementwise p log(p / q) with the limits 0 log(0 / q) = 0 and p log(p / 0) = inf (p > 0).

  The first limit is why a class no sample predicts costs nothing in a KL(p || q); the second
  makes a KL infinite when p puts mass where q has none, which is its true value.
  """
  p, q = np.broadcast_arrays(np.asarray(p, np.float64), np.asarray(q, np.float64))
  out = np.zeros_like(p)
  pos = p > 0
  with np.errstate(divide='ignore'):
    out[pos] = p[pos] * (np.log(p[pos]) - np.log(q[pos]))
  return out


# ---------------------------------------------------------------------------------------------
# Frechet distance (FID).


def gaussian_stats(features_NxD) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and unbiased covariance (D, D) of the features, in float64.

  Heusel et al. 2017, Eq. 6 fits a Gaussian to each feature set; as in their reference TTUR
  code (np.mean and np.cov(rowvar=False)), the covariance divides by N - 1.
  """
  x_NxD = as_features(features_NxD, 'features', min_rows=2)
  return x_NxD.mean(axis=0), np.cov(x_NxD, rowvar=False).reshape(x_NxD.shape[1], -1)


def _psd_sqrt(cov_DxD: np.ndarray) -> np.ndarray:
  """Symmetric PSD square root via eigh; eigenvalues below 0 (rounding) are clipped to 0."""
  w_D, v_DxD = np.linalg.eigh(cov_DxD)
  return (v_DxD * np.sqrt(np.clip(w_D, 0.0, None))) @ v_DxD.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
  """Squared Frechet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

  Heusel et al. 2017, Eq. 6 (Dowson & Landau 1982):
    d^2 = ||mu1 - mu2||^2 + Tr(C1 + C2 - 2 (C1 C2)^{1/2}).
  C1 C2 is not symmetric, so scipy.linalg.sqrtm (the reference code) can return complex
  values or fail for singular covariances. Its eigenvalues equal those of the symmetric PSD
  matrix C1^{1/2} C2 C1^{1/2} (AB and BA share eigenvalues), so
  Tr (C1 C2)^{1/2} = sum_i sqrt(lambda_i(C1^{1/2} C2 C1^{1/2})), computed with eigh and tiny
  negative eigenvalues clipped to 0. Rounding can still leave about -1e-12 for equal inputs;
  the result is clipped at 0, the distance's true lower bound.
  """
  mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
  cov1, cov2 = (np.atleast_2d(np.asarray(c, np.float64)) for c in (cov1, cov2))
  d = mu1.shape[0]
  if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
    raise UserError(f'frechet_distance needs means of shape (D,) and covariances (D, D); got '
                    f'{mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}.')
  for name, a in (('mu1', mu1), ('cov1', cov1), ('mu2', mu2), ('cov2', cov2)):
    if not np.all(np.isfinite(a)):
      raise UserError(f'{name} contains NaN or inf: check the features it was computed from.')
  sqrt_cov1 = _psd_sqrt((cov1 + cov1.T) / 2)
  middle_DxD = sqrt_cov1 @ cov2 @ sqrt_cov1
  eig_D = np.linalg.eigvalsh((middle_DxD + middle_DxD.T) / 2)
  tr_covmean = np.sum(np.sqrt(np.clip(eig_D, 0.0, None)))
  diff_D = mu1 - mu2
  value = diff_D @ diff_D + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_covmean
  return float(max(value, 0.0))


def fid(features_a, features_b) -> float:
  """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, Eq. 6).

  Biased upward for small N (Chong & Forsyth 2020): compare models at the same N only.
  """
  fa, fb = as_features(features_a, 'features_a', 2), as_features(features_b, 'features_b', 2)
  if fa.shape[1] != fb.shape[1]:
    raise UserError(f'features_a and features_b differ in dimension ({fa.shape[1]} vs '
                    f'{fb.shape[1]}): embed both with the same classifier layer.')
  return frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))


def kid(features_a, features_b, num_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
  """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 4):
  the unbiased estimate of MMD^2 (their Eq. 2 with the U-statistic) under the cubic kernel
  k(x, y) = (x.y / d + 1)^3, averaged over `num_subsets` random subsets of `subset_size` rows
  of each set (at most the smaller set's size); returns (mean, std) over the subsets.

  Unbiased, so it can be slightly negative when the sets come from one distribution, and
  unlike FID its expectation does not depend on N.
  """
  fa, fb = as_features(features_a, 'features_a', 2), as_features(features_b, 'features_b', 2)
  if fa.shape[1] != fb.shape[1]:
    raise UserError(f'features_a and features_b differ in dimension ({fa.shape[1]} vs '
                    f'{fb.shape[1]}): embed both with the same network layer.')
  m = min(subset_size, len(fa), len(fb))
  d = fa.shape[1]
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_subsets):
    x = fa[rng.choice(len(fa), m, replace=False)]
    y = fb[rng.choice(len(fb), m, replace=False)]
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    off_diagonal = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    values.append(off_diagonal - 2.0 * kxy.mean())
  return float(np.mean(values)), float(np.std(values))


# ---------------------------------------------------------------------------------------------
# Class-probability scores.


def classifier_score(probs_NxK, num_splits: int = 10) -> tuple[float, float]:
  """exp(E_x KL(p(y|x) || p(y))), mean and std over `num_splits` consecutive splits.

  Salimans et al. 2016, Sec. 4 (the Inception Score), with p(y) the mean of p(y|x) over each
  split, as in their reference code (split i is rows [i N / S, (i+1) N / S); numpy's std,
  ddof=0). It lies in [1, K]: K for confident predictions spread evenly over the K classes,
  1 when every sample gets the same prediction. 0 log 0 is taken as 0.
  """
  p_NxK = _check_probs(probs_NxK, 'probs')
  n = p_NxK.shape[0]
  if not 1 <= num_splits <= n:
    raise UserError(f'num_splits={num_splits} must be between 1 and the number of samples ({n}).')
  scores = []
  for i in range(num_splits):
    part_MxK = p_NxK[i * n // num_splits:(i + 1) * n // num_splits]
    py_K = part_MxK.mean(axis=0, keepdims=True)
    scores.append(np.exp(np.mean(np.sum(_rel_entr(part_MxK, py_K), axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


def class_coverage(probs_NxK, reference_probs_K=None) -> dict:
  """How many classes the samples hit and how far their class histogram is from a reference.

  Mode-collapse metrics of VEEGAN (Srivastava et al. 2017, Sec. 5.2) and PacGAN (Lin et al.
  2018): each sample is assigned its argmax class; returns
    'modes'           number of classes that are the argmax of at least one sample (int),
    'coverage'        modes / K,
    'kl_to_reference' KL(h || r) = sum_k h_k log(h_k / r_k), h the histogram of argmax classes
                      and r the reference (uniform by default; pass e.g. the test split's label
                      frequencies, which are normalised to sum to 1).
  Classes with h_k = 0 contribute 0 (the limit of h log h), so missing modes are not a
  log(0); a class with r_k = 0 that samples do hit makes the KL inf, its true value.
  """
  p_NxK = _check_probs(probs_NxK, 'probs')
  n, k = p_NxK.shape
  counts_K = np.bincount(np.argmax(p_NxK, axis=1), minlength=k)
  if reference_probs_K is None:
    ref_K = np.full(k, 1.0 / k)
  else:
    ref_K = np.asarray(reference_probs_K, np.float64).reshape(-1)
    if ref_K.shape != (k,) or not np.all(np.isfinite(ref_K)) or np.any(ref_K < 0) \
        or ref_K.sum() <= 0:
      raise UserError(f'reference_probs_K must be {k} non-negative class frequencies (one per '
                      f'column of probs); got shape {ref_K.shape}.')
    ref_K = ref_K / ref_K.sum()
  modes = int(np.count_nonzero(counts_K))
  return {'modes': modes, 'coverage': modes / k,
          'kl_to_reference': float(np.sum(_rel_entr(counts_K / n, ref_K)))}


# ---------------------------------------------------------------------------------------------
# Improved precision and recall (k-NN manifolds).


def pad_to_blocks(x_NxD: np.ndarray, chunk: int) -> tuple[jax.Array, jax.Array]:
  """Pads N up to a multiple of `chunk` -> (B, chunk, D) blocks and a (B, chunk) valid mask."""
  n, d = x_NxD.shape
  b = -(-n // chunk)
  padded = np.zeros((b * chunk, d), np.float32)
  padded[:n] = x_NxD
  valid = np.arange(b * chunk) < n
  return jnp.asarray(padded.reshape(b, chunk, d)), jnp.asarray(valid.reshape(b, chunk))


def _sq_dists(a_RxD: jax.Array, b_CxD: jax.Array) -> jax.Array:
  """||a_r - b_c||^2 = |a|^2 + |b|^2 - 2 a.b, clipped at 0 (rounding), as an (R, C) matrix."""
  a2_R = jnp.sum(a_RxD**2, axis=1)
  b2_C = jnp.sum(b_CxD**2, axis=1)
  ab_RxC = jnp.matmul(a_RxD, b_CxD.T, precision=lax.Precision.HIGHEST)
  return jnp.maximum(a2_R[:, None] + b2_C[None, :] - 2.0 * ab_RxC, 0.0)


@functools.partial(jax.jit, static_argnames=('k',))
def _kth_nn_sq_block(rows_RxD, row_start, cols_BxCxD, valid_BxC, k: int):
  """Squared distance from each row to its k-th nearest column point other than itself.

  Row r is point `row_start + r` of the same set the columns are blocks of; its own column is
  masked out by index (so an exact duplicate elsewhere still counts as a neighbour at 0). The
  k smallest distances are kept while streaming over column blocks (memory R x (C + k)).
  """
  num_rows, chunk = rows_RxD.shape[0], cols_BxCxD.shape[1]
  row_idx_R = row_start + jnp.arange(num_rows)

  def body(best_RxK, inputs):
    block, cols_CxD, valid_C = inputs
    col_idx_C = block * chunk + jnp.arange(chunk)
    d2_RxC = _sq_dists(rows_RxD, cols_CxD)
    keep_RxC = valid_C[None, :] & (col_idx_C[None, :] != row_idx_R[:, None])
    d2_RxC = jnp.where(keep_RxC, d2_RxC, jnp.inf)
    neg_RxK, _ = lax.top_k(-jnp.concatenate([best_RxK, d2_RxC], axis=1), k)
    return -neg_RxK, None

  init_RxK = jnp.full((num_rows, k), jnp.inf, rows_RxD.dtype)
  blocks = jnp.arange(cols_BxCxD.shape[0])
  best_RxK, _ = lax.scan(body, init_RxK, (blocks, cols_BxCxD, valid_BxC))
  return best_RxK[:, k - 1]


def _knn_sq_radii(x_NxD: np.ndarray, k: int, chunk: int) -> np.ndarray:
  """Squared k-NN radii (Kynkaanniemi et al. 2019, Eq. 1), one jitted call per row block."""
  chunk = min(chunk, x_NxD.shape[0])
  blocks_BxCxD, valid_BxC = pad_to_blocks(x_NxD, chunk)
  out = [_kth_nn_sq_block(blocks_BxCxD[b], b * chunk, blocks_BxCxD, valid_BxC, k=k)
         for b in range(blocks_BxCxD.shape[0])]
  return np.asarray(jnp.concatenate(out))[:x_NxD.shape[0]]


def _check_knn_args(n: int, k: int, chunk: int, name: str):
  if not isinstance(k, (int, np.integer)) or k < 1:
    raise UserError(f'k={k!r} must be a positive integer (Kynkaanniemi et al. use k=3).')
  if k >= n:
    raise UserError(f'k={k} needs more than k points in {name} (got {n}): use a smaller k or '
                    'more samples.')
  if not isinstance(chunk, (int, np.integer)) or chunk < 1:
    raise UserError(f'chunk={chunk!r} must be a positive integer.')


def knn_radii(features_NxD, k: int = 3, chunk: int = _DEFAULT_CHUNK) -> np.ndarray:
  """Distance from each point to its k-th nearest neighbour in the same set, excluding itself.

  Kynkaanniemi et al. 2019, Eq. 1: NN_k(phi', Phi) is the radius of the ball around phi' whose
  union over Phi approximates the set's manifold. Exact (all pairs), in float32 chunks of
  `chunk` x `chunk` distances; returns a float64 (N,) array.
  """
  x_NxD = as_features(features_NxD, 'features')
  _check_knn_args(x_NxD.shape[0], k, chunk, 'features')
  x_NxD = x_NxD - x_NxD.mean(axis=0)  # Distances are shift-invariant; centring cuts rounding.
  return np.sqrt(_knn_sq_radii(x_NxD, int(k), int(chunk)).astype(np.float64))


def _pad_radii(sq_radii_N: np.ndarray, shape_BxC: tuple[int, int]) -> np.ndarray:
  """(B, C) squared radii, padding points given -1 so no distance (>= 0) falls inside them."""
  out = np.full(shape_BxC[0] * shape_BxC[1], -1.0, np.float32)
  out[:len(sq_radii_N)] = sq_radii_N
  return out.reshape(shape_BxC)


@jax.jit
def _membership_block(rows_RxD, row_sq_radii_R, cols_BxCxD, col_sq_radii_BxC):
  """For one row block against all column blocks: which rows fall in a column ball, which
  columns fall in a row ball (Kynkaanniemi et al. 2019, Eq. 2). Padding has radius^2 = -1.
  """

  def body(row_in_R, inputs):
    cols_CxD, col_sq_radii_C = inputs
    d2_RxC = _sq_dists(rows_RxD, cols_CxD)
    row_in_R = row_in_R | jnp.any(d2_RxC <= col_sq_radii_C[None, :], axis=1)
    col_in_C = jnp.any(d2_RxC <= row_sq_radii_R[:, None], axis=0)
    return row_in_R, col_in_C

  init_R = jnp.zeros(rows_RxD.shape[0], bool)
  return lax.scan(body, init_R, (cols_BxCxD, col_sq_radii_BxC))


def precision_recall(real_features, fake_features, k: int = 3,
                     chunk: int = _DEFAULT_CHUNK) -> dict:
  """Improved precision and recall of Kynkaanniemi et al. 2019, Eq. 1-3.

  Each set's manifold is the union of balls centred on its points, of radius the distance to
  the point's k-th nearest neighbour in the same set (itself excluded; Eq. 1). f(phi, Phi) = 1
  if phi lies in some ball of Phi, boundary included (Eq. 2), and (Eq. 3)
    precision = mean over fakes of f(fake, real manifold)   (are samples realistic?)
    recall    = mean over reals of f(real, fake manifold)   (is the data's variety covered?).
  Exact: every pairwise distance is computed, in float32 blocks of `chunk` x `chunk` (jitted
  matrix products; memory O(chunk^2 + N D)), the real-fake distances once for both metrics.
  The paper uses k=3 and N=50,000 per set; the result depends on k and N, so compare only at
  equal settings.
  """
  real = as_features(real_features, 'real_features')
  fake = as_features(fake_features, 'fake_features')
  if real.shape[1] != fake.shape[1]:
    raise UserError(f'real and fake features differ in dimension ({real.shape[1]} vs '
                    f'{fake.shape[1]}): embed both with the same classifier layer.')
  _check_knn_args(real.shape[0], k, chunk, 'real_features')
  _check_knn_args(fake.shape[0], k, chunk, 'fake_features')
  k, chunk = int(k), int(chunk)
  centre_D = real.mean(axis=0)  # Shift-invariant; centring cuts float32 rounding in |a|^2+|b|^2.
  real, fake = real - centre_D, fake - centre_D
  real_sq_radii = _knn_sq_radii(real, k, chunk)
  fake_sq_radii = _knn_sq_radii(fake, k, chunk)

  n_real, n_fake = real.shape[0], fake.shape[0]
  real_blocks, _ = pad_to_blocks(real, min(chunk, n_real))
  fake_blocks, _ = pad_to_blocks(fake, min(chunk, n_fake))
  real_r2 = _pad_radii(real_sq_radii, real_blocks.shape[:2])
  fake_r2 = jnp.asarray(_pad_radii(fake_sq_radii, fake_blocks.shape[:2]))
  real_in_fake = []
  fake_in_real = np.zeros(fake_r2.shape, bool)
  for b in range(real_blocks.shape[0]):
    row_in, col_in = _membership_block(real_blocks[b], jnp.asarray(real_r2[b]), fake_blocks,
                                       fake_r2)
    real_in_fake.append(np.asarray(row_in))
    fake_in_real |= np.asarray(col_in)
  recall = np.concatenate(real_in_fake)[:n_real].mean()
  precision = fake_in_real.reshape(-1)[:n_fake].mean()
  return {'precision': float(precision), 'recall': float(recall)}
