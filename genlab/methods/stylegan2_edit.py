"""Latent editing of a trained StyleGAN2 generator: semantic directions, edits along them,
style mixing and truncation grids, and the projection of real images into W and W+.

Directions in W (each a unit vector d of w_dim; sigma the standard deviation of w along it):
  SeFa      closed-form factorisation of the style affines (Shen & Zhou 2021, "Closed-Form
            Factorization of Latent Semantics in GANs", Eq. 5-6): the eigenvectors
            of A^T A, A the stacked affine weights of the chosen synthesis layers.
  GANSpace  PCA of w = M(z) over sampled z (Harkonen et al. 2020, "GANSpace: Discovering
            Interpretable GAN Controls", Sec. 2.2); sigma is the component's standard
            deviation.
An edit moves the ws of layers [start, stop) only: ws'_l = ws_l + strength sigma d (GANSpace's
layer-wise edit E(v_i, j-k), which SeFa's official code also makes on its chosen layers).

Projection (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN",
Sec. 5 and Appendix D), as stylegan2-ada-pytorch's projector.py runs it: start at the mean
of sampled w, optimise w (or one w per layer for W+) and a noise map per layer with Adam on
the LPIPS distance plus 1e5 times the multi-scale autocorrelation of the noise maps; the
learning rate ramps up over the first 5 % of steps and down (cosine) over the last 25 %, w is
perturbed by Gaussian noise whose std falls (quadratically) from 0.05 sigma_w to 0 over the
first 75 %, and the noise maps are renormalised to zero mean and unit variance after every
step. sigma_w = sqrt(E|w - mean w|^2), from the same samples as the start.

Pure functions of (generator params, networks); the command line's `--mode=edit`
(genlab/edit.py) writes the pictures. Parameters are a state's `ema_params`.
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genlab import log
from genlab.errors import UserError
from genlab.metrics import lpips as lpips_lib

DIRECTION_METHODS = ('sefa', 'ganspace')
SPACES = ('w', 'w+')
# Karras et al. 2019, Fig. 3: styles of resolutions 4-8 are coarse, 16-32 middle, 64+ fine.
STYLE_MIXING_RESOLUTIONS = {'coarse': (4, 8), 'middle': (16, 32), 'fine': (64, 1 << 30)}
# VGG16's relu5_3 (the last LPIPS tap) lies after four 2x2 max pools: a side under 16 pixels
# leaves it empty, so smaller images are enlarged (by pixel repetition) for LPIPS only.
LPIPS_MIN_SIDE = 16
# projector.py downsamples images above 256 px ("VGG was built for 224x224 images").
LPIPS_MAX_SIDE = 256


# -- layers ------------------------------------------------------------------------------------
def _block_resolutions(networks) -> list[int]:
  return [2 ** i for i in range(2, int(math.log2(networks.resolution)) + 1)]


def ws_resolutions(networks) -> list[int]:
  """The resolution of the synthesis layer that reads each ws index: ws[0] the 4x4 conv,
  ws[2k-1], ws[2k] the two convs of block 2^(k+2), the last the top toRGB (the skip
  generator's layout, genlab/models/stylegan2.py SynthesisNetwork)."""
  out = [4]
  for res in _block_resolutions(networks)[1:]:
    out += [res, res]
  return out + [networks.resolution]


def style_affines(g_params, networks) -> list[tuple[int, str, jax.Array]]:
  """[(ws index, layer name, effective affine weight (w_dim, out))] of every synthesis layer,
  in network order. Effective: the stored kernel times its equalized-lr gain 1 / sqrt(w_dim)
  (FullyConnected, lr_multiplier 1, Karras et al. 2018, Sec. 4.1), and for toRGB the further
  1 / sqrt(channels) that ToRGB applies to its styles."""
  synthesis = g_params['synthesis']
  affines = []
  index = 0
  for res in _block_resolutions(networks):
    block = synthesis[f'b{res}']
    for conv in (('conv1',) if res == 4 else ('conv0', 'conv1')):
      kernel = block[conv]['affine']['kernel']
      affines.append((index, f'b{res}.{conv}', kernel / math.sqrt(kernel.shape[0])))
      index += 1
    kernel = block['torgb']['affine']['kernel']
    affines.append((index, f'b{res}.torgb', kernel / math.sqrt(kernel.shape[0])
                    / math.sqrt(kernel.shape[1])))
  return affines


def check_layers(layers: tuple[int, int], num_ws: int, what: str = 'layers') -> tuple[int, int]:
  """(start, stop) as a non-empty range of ws indices inside [0, num_ws), else UserError."""
  start, stop = (int(v) for v in layers)
  if not 0 <= start < stop <= num_ws:
    raise UserError(f'{what} {start}:{stop} is not a non-empty range of ws inside [0, {num_ws}) '
                    f'(this generator has {num_ws}): give START:STOP with '
                    f'0 <= START < STOP <= {num_ws}.')
  return start, stop


def parse_layers(text: Optional[str], num_ws: int) -> tuple[int, int]:
  """'START:STOP' (either side may be left out, as in a Python slice) -> (start, stop)."""
  if text is None or text.strip() in ('', ':'):
    return 0, num_ws
  start, sep, stop = text.partition(':')
  try:
    if not sep:
      raise ValueError(text)
    layers = (int(start) if start.strip() else 0, int(stop) if stop.strip() else num_ws)
  except ValueError:
    raise UserError(f'--edit_layers={text!r}: give START:STOP, ws indices in [0, {num_ws}), '
                    'e.g. 0:3 for the coarse layers of a 32 px generator.') from None
  return check_layers(layers, num_ws, '--edit_layers')


def style_mixing_ranges(networks) -> dict[str, tuple[int, int]]:
  """{'coarse' | 'middle' | 'fine': (start, stop)} of ws indices by the resolution of the
  layer that reads them (Karras et al. 2019, Fig. 3); empty ranges are left out."""
  res = ws_resolutions(networks)
  out = {}
  for name, (low, high) in STYLE_MIXING_RESOLUTIONS.items():
    picked = [i for i, r in enumerate(res) if low <= r <= high]
    if picked:
      out[name] = (picked[0], picked[-1] + 1)
  return out


# -- directions --------------------------------------------------------------------------------
def _sign_fixed(vectors_KxW: np.ndarray) -> np.ndarray:
  """Each row times the sign of its largest entry: an eigenvector's sign is arbitrary, and
  this makes the directions (and the pictures) the same on every machine."""
  big = np.take_along_axis(vectors_KxW, np.argmax(np.abs(vectors_KxW), axis=1)[:, None], 1)
  return vectors_KxW * np.where(big < 0, -1.0, 1.0)


def sefa_directions(g_params, networks, layers: Optional[Sequence[int]] = None):
  """SeFa (Shen & Zhou 2021, Eq. 5-6): with A the affine weights of the layers reading the
  chosen ws indices stacked as rows (one row per style, each normalised to unit length as
  the official code, genforce/sefa utils.py factorize_weight, normalises), the directions
  maximising |A n|^2 under |n| = 1 are the eigenvectors of A^T A.

  Layers: the conv that reads each chosen ws index (the last index: the top toRGB, which alone
  reads it), as the official code picks them. Returns (directions (w_dim, w_dim) as rows, unit
  norm, eigenvalues descending (w_dim,)), float64.
  """
  wanted = sorted(set(range(networks.num_ws) if layers is None else (int(i) for i in layers)))
  check_layers((wanted[0], wanted[-1] + 1) if wanted else (0, 0), networks.num_ws)
  by_index = {}
  for index, name, weight in style_affines(g_params, networks):
    if index not in by_index or 'torgb' in by_index[index][0]:  # a conv before a toRGB
      by_index[index] = (name, weight)
  rows = [np.asarray(by_index[i][1], np.float64).T for i in wanted]
  a = np.concatenate(rows)
  a = a / np.linalg.norm(a, axis=1, keepdims=True)
  values, vectors = np.linalg.eigh(a.T @ a)
  order = np.argsort(values)[::-1]
  return _sign_fixed(vectors[:, order].T), values[order]


@functools.partial(jax.jit, static_argnums=0)
def _map_w(networks, g_params, z_BxZ):
  return networks.map(g_params, z_BxZ)[:, 0]  # every ws layer holds the same w


def sample_w(g_params, networks, key, num_samples: int, chunk: int = 1024) -> np.ndarray:
  """(num_samples, w_dim) float64 w = M(z), z ~ N(0, I) (untruncated), `chunk` at a time."""
  if num_samples < 2:
    raise UserError(f'num_samples={num_samples}: give at least 2 samples of w.')
  parts = []
  for start in range(0, num_samples, chunk):
    z = jax.random.normal(jax.random.fold_in(key, start), (chunk, networks.z_dim), jnp.float32)
    parts.append(np.asarray(_map_w(networks, g_params, z), np.float64))
  return np.concatenate(parts)[:num_samples]


def ganspace_directions(g_params, networks, key, num_samples: int):
  """GANSpace (Harkonen et al. 2020, Sec. 2.2): PCA of w = M(z) for num_samples z.

  Returns (components (w_dim, w_dim) as rows, unit norm, by explained variance descending;
  their standard deviations sqrt(explained variance), with 1 / (N - 1) as the reference's
  sklearn PCA; the mean of w (w_dim,)), float64.
  """
  w = sample_w(g_params, networks, key, num_samples)
  mean = w.mean(axis=0)
  centred = w - mean
  values, vectors = np.linalg.eigh(centred.T @ centred / (len(w) - 1))
  order = np.argsort(values)[::-1]
  return _sign_fixed(vectors[:, order].T), np.sqrt(np.maximum(values[order], 0.0)), mean


def direction_sigmas(w_NxW: np.ndarray, directions_KxW: np.ndarray) -> np.ndarray:
  """The standard deviation of sampled w along each direction, sqrt(d^T Cov(w) d) (for
  GANSpace's components, their own standard deviations): the unit of an edit's strength."""
  return np.std(np.asarray(w_NxW) @ np.asarray(directions_KxW).T, axis=0, ddof=1)


def check_direction(index: int, count: int, what: str = 'direction index') -> int:
  """`index` if it names one of `count` directions, else UserError."""
  if not 0 <= int(index) < count:
    raise UserError(f'{what} {index} is out of range: {count} directions were computed (one '
                    f'per dimension of w); give an index in [0, {count}).')
  return int(index)


# -- edits -------------------------------------------------------------------------------------
def apply_direction(ws_BxNxW, direction_W, amount, layers: tuple[int, int]):
  """ws + amount d on the ws layers [start, stop), the others untouched (GANSpace's layer-wise
  edit E(v_i, j-k)); `amount` = strength x sigma, a scalar or one per row (B,)."""
  start, stop = layers
  n = ws_BxNxW.shape[1]
  mask_N = ((jnp.arange(n) >= start) & (jnp.arange(n) < stop)).astype(ws_BxNxW.dtype)
  amount_B = jnp.broadcast_to(jnp.asarray(amount, ws_BxNxW.dtype), ws_BxNxW.shape[:1])
  return ws_BxNxW + amount_B[:, None, None] * mask_N[None, :, None] * jnp.asarray(
      direction_W, ws_BxNxW.dtype)[None, None, :]


def edit_strip_ws(ws_BxNxW, direction_W, amounts_S, layers: tuple[int, int]):
  """(B, S, N, W): each row's ws moved by each amount (strength x sigma) along d."""
  b, n, w = ws_BxNxW.shape
  amounts_S = jnp.asarray(amounts_S, ws_BxNxW.dtype)
  s = amounts_S.shape[0]
  tiled = jnp.repeat(ws_BxNxW, s, axis=0)
  return apply_direction(tiled, direction_W, jnp.tile(amounts_S, b), layers).reshape(b, s, n, w)


def style_mix_ws(row_ws_RxNxW, col_ws_CxNxW, layers: tuple[int, int]):
  """(R, C, N, W): column source j (source A of Karras et al. 2019, Fig. 3) with the styles of
  layers [start, stop) copied from row source i (source B)."""
  start, stop = layers
  n = row_ws_RxNxW.shape[1]
  take_N = (jnp.arange(n) >= start) & (jnp.arange(n) < stop)
  return jnp.where(take_N[None, None, :, None], row_ws_RxNxW[:, None], col_ws_CxNxW[None])


def with_sources(grid_RxCxHxWxC: np.ndarray, rows_RxHxWxC: np.ndarray,
                 cols_CxHxWxC: np.ndarray, blank: float = 0.5) -> np.ndarray:
  """(R + 1, C + 1, H, W, C): the grid with the column sources above it, the row sources to
  its left and a blank corner (the layout of Karras et al. 2019, Fig. 3)."""
  corner = np.full_like(rows_RxHxWxC[:1], blank)
  top = np.concatenate([corner, cols_CxHxWxC])[None]
  body = np.concatenate([rows_RxHxWxC[:, None], grid_RxCxHxWxC], axis=1)
  return np.concatenate([top, body])


def truncation_ws(ws_BxNxW, w_avg_W, psis: Sequence[float]):
  """(P, B, N, W): w_avg + psi (w - w_avg) for each psi (Karras et al. 2019, Sec. 3.2)."""
  for psi in psis:
    if not 0.0 <= float(psi) <= 1.0:
      raise UserError(f'truncation psi {psi} is outside [0, 1]: give values from 0 (the '
                      'average w) to 1 (no truncation).')
  psis = jnp.asarray(psis, ws_BxNxW.dtype)[:, None, None, None]
  return w_avg_W + psis * (ws_BxNxW[None] - w_avg_W)


def layer_sensitivity(render, ws_BxNxW) -> dict:
  """How far the images move when w varies at one layer only: for layer i, the std across the
  B samples (averaged over pixels) of images whose ws are the first sample's at every other
  layer; 'all', when w varies at every layer. `render`: ws (M, N, W) -> images (M, H, W, C).
  Near zero at every layer while w itself varies: the generator ignores its styles (the state
  of a collapsed StyleGAN2)."""
  ws = jnp.asarray(ws_BxNxW)
  n = ws.shape[1]

  def spread(images):
    return float(np.mean(np.std(np.asarray(images, np.float64), axis=0)))

  per_layer = [spread(render(style_mix_ws(ws, ws[:1], (i, i + 1))[:, 0])) for i in range(n)]
  return {'all': spread(render(ws)), 'per_layer': per_layer}


# -- projection --------------------------------------------------------------------------------
def _pool2(x_BxHxWx1):
  b, h, w, c = x_BxHxWx1.shape
  return x_BxHxWx1.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def noise_regularization(noise: dict):
  """Per image (B,): sum over the noise maps n and over scales (n, then 2x2 average pooled
  until the side is 8 or less) of the squared autocorrelation at a one-pixel shift along x
  and along y, mean(n * roll(n, 1))^2 (Karras et al. 2020, Appendix D; projector.py)."""
  total = 0.0
  for n in noise.values():
    while True:
      total = total + jnp.mean(n * jnp.roll(n, 1, axis=2), axis=(1, 2, 3)) ** 2
      total = total + jnp.mean(n * jnp.roll(n, 1, axis=1), axis=(1, 2, 3)) ** 2
      if n.shape[1] <= 8:
        break
      n = _pool2(n)
  return total


def normalize_noise(noise: dict) -> dict:
  """Each map shifted and scaled to zero mean and unit variance per image (projector.py)."""
  def unit(n):
    n = n - jnp.mean(n, axis=(1, 2, 3), keepdims=True)
    return n * jax.lax.rsqrt(jnp.mean(jnp.square(n), axis=(1, 2, 3), keepdims=True))
  return {k: unit(v) for k, v in noise.items()}


def learning_rate(step: int, num_steps: int, initial: float = 0.1, rampdown: float = 0.25,
                  rampup: float = 0.05) -> float:
  """projector.py: initial x (cosine ramp down over the last `rampdown` of the steps) x
  (linear ramp up over the first `rampup`)."""
  t = step / num_steps
  ramp = min(1.0, (1.0 - t) / rampdown)
  ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
  return initial * ramp * min(1.0, t / rampup)


def w_noise_scale(step: int, num_steps: int, w_std: float, initial: float = 0.05,
                  ramp: float = 0.75) -> float:
  """projector.py: sigma_w x 0.05 x max(0, 1 - t / 0.75)^2, the std of the noise added to w."""
  return w_std * initial * max(0.0, 1.0 - (step / num_steps) / ramp) ** 2


def lpips_view(images_BxHxWxC):
  """[-1, 1] images as LPIPS's VGG16 takes them: 3 channels (grey repeated), sides under
  LPIPS_MIN_SIDE enlarged by pixel repetition, sides over LPIPS_MAX_SIDE reduced by area
  averaging (projector.py)."""
  x = images_BxHxWxC
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  side = min(x.shape[1:3])
  if side < LPIPS_MIN_SIDE:
    k = -(-LPIPS_MIN_SIDE // side)
    x = jnp.repeat(jnp.repeat(x, k, axis=1), k, axis=2)
  if max(x.shape[1:3]) > LPIPS_MAX_SIDE:
    h, w = x.shape[1:3]
    scale = LPIPS_MAX_SIDE / max(h, w)
    x = jax.image.resize(x, (x.shape[0], round(h * scale), round(w * scale), 3), 'linear',
                         antialias=True)
  return x


def check_targets(targets_BxHxWxC, networks) -> None:
  shape = tuple(networks.image_shape)
  if targets_BxHxWxC.ndim != 4 or tuple(targets_BxHxWxC.shape[1:]) != shape:
    raise UserError(f'images to project have shape {tuple(targets_BxHxWxC.shape)}: give '
                    f'(N, {", ".join(map(str, shape))}) images in [0, 1], the data\'s shape.')


def _crop(networks, img):
  """The network image at the data's shape, unclipped (so gradients pass everywhere)."""
  h, w = networks.image_shape[:2]
  top, left = (networks.resolution - h) // 2, (networks.resolution - w) // 2
  return img[:, top:top + h, left:left + w]


_ADAM = optax.scale_by_adam()  # Adam's betas (0.9, 0.999), eps 1e-8, as torch.optim.Adam's


def _distance(networks, consts, params, w_noise):
  """(LPIPS (B,), the image cropped to the data's shape) of params' ws plus `w_noise`.
  consts = (g_params, lpips_params, the targets as lpips_view gives them): arguments of the
  compiled functions, not constants inside them."""
  g_params, lpips_params, target_view = consts
  ws = params['w'] + w_noise
  ws = jnp.broadcast_to(ws, (ws.shape[0], networks.num_ws, ws.shape[2]))
  img = _crop(networks, networks.synthesize(g_params, ws, noise_mode='const',
                                            noise=params['noise']))
  lpips_module = lpips_lib.LPIPS('vgg16')
  return lpips_module.apply({'params': lpips_params}, lpips_view(img), target_view), img


@functools.partial(jax.jit, static_argnums=(0, 1))
def _step(networks, noise_weight, consts, params, opt_state, key, lr, w_noise_std):
  """One Adam step on sum_images(LPIPS + noise_weight x noise regularisation), then the
  noise maps renormalised (projector.py)."""
  def loss_fn(params):
    w_noise = jax.random.normal(key, params['w'].shape) * w_noise_std
    dist_B, _ = _distance(networks, consts, params, w_noise)
    return jnp.sum(dist_B + noise_weight * noise_regularization(params['noise'])), dist_B

  (_, dist_B), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt_state = _ADAM.update(grads, opt_state, params)
  params = jax.tree.map(lambda p, u: p - lr * u, params, updates)
  return dict(params, noise=normalize_noise(params['noise'])), opt_state, dist_B


@functools.partial(jax.jit, static_argnums=0)
def _result(networks, consts, params):
  """(LPIPS (B,), images in [0, 1] at the data's shape) without the w noise."""
  dist_B, img = _distance(networks, consts, params, jnp.zeros_like(params['w']))
  return dist_B, jnp.clip((img + 1.0) * 0.5, 0.0, 1.0)  # as Networks.to_data


def project(networks, g_params, lpips_params, targets_BxHxWxC, key, *, num_steps: int = 1000,
            space: str = 'w', w_samples: int = 10_000, initial_learning_rate: float = 0.1,
            noise_weight: float = 1e5, log_every: int = 0) -> dict:
  """Projects targets ([0, 1], the data's shape) into W or W+ (module docstring).

  Each image is optimised on its own (the loss is a sum over images). The distance is LPIPS
  VGG16 (genlab/metrics/lpips.py) between the generated image cropped to the data's shape
  and the target. Returns numpy arrays: 'ws' (B, num_ws, w_dim), 'noise' {layer: (B, H, W,
  1)}, 'images' (B, H, W, C) in [0, 1], 'lpips', 'mse', 'psnr' (B,) of the result,
  'initial_lpips' (B,) at the start, 'losses' (num_steps, B) the LPIPS of each step.
  """
  if space not in SPACES:
    raise UserError(f'projection space {space!r} is not known: use one of {list(SPACES)}.')
  if num_steps < 1:
    raise UserError(f'--project_steps={num_steps}: give at least 1 step.')
  targets = jnp.asarray(targets_BxHxWxC, jnp.float32)
  check_targets(targets, networks)
  b = targets.shape[0]
  w_key, noise_key, step_key = jax.random.split(key, 3)
  w = sample_w(g_params, networks, w_key, w_samples)
  w_avg = w.mean(axis=0)
  w_std = float(np.sqrt(np.sum((w - w_avg) ** 2) / len(w)))  # projector.py's w_std
  layers = 1 if space == 'w' else networks.num_ws
  shapes = networks.generator.noise_shapes()
  params = {'w': jnp.broadcast_to(jnp.asarray(w_avg, jnp.float32), (b, layers, w.shape[1])),
            'noise': {name: jax.random.normal(jax.random.fold_in(noise_key, i), (b, *hw, 1))
                      for i, (name, hw) in enumerate(shapes.items())}}
  consts = (g_params, lpips_params, lpips_view(targets * 2.0 - 1.0))
  initial_lpips, _ = _result(networks, consts, params)
  opt_state = _ADAM.init(params)
  losses = []
  for t in range(num_steps):
    params, opt_state, dist_B = _step(
        networks, float(noise_weight), consts, params, opt_state, jax.random.fold_in(step_key, t),
        jnp.float32(learning_rate(t, num_steps, initial_learning_rate)),
        jnp.float32(w_noise_scale(t, num_steps, w_std)))
    losses.append(dist_B)
    if log_every and (t + 1) % log_every == 0:
      log.info(f'projection step {t + 1}/{num_steps}: LPIPS {float(jnp.mean(dist_B)):.4f}')
  final_lpips, images = _result(networks, consts, params)
  images = np.asarray(images)
  mse = np.mean((images - np.asarray(targets)) ** 2, axis=(1, 2, 3))
  ws = np.broadcast_to(np.asarray(params['w']), (b, networks.num_ws, w.shape[1])).copy()
  return {'ws': ws, 'noise': {k: np.asarray(v) for k, v in params['noise'].items()},
          'images': images, 'lpips': np.asarray(final_lpips),
          'initial_lpips': np.asarray(initial_lpips), 'mse': mse,
          'psnr': 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12)),
          'losses': np.asarray(jnp.stack(losses)), 'w_std': w_std}
