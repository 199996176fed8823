"""Random image transformations inside jitted steps, drawn from the step's key (so a resumed
run sees exactly the same inputs). Images are (N, H, W, C) floats."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def random_affine(x_NxHxWxC, key, *, max_scale: float = 0.0, max_degrees: float = 0.0,
                  max_shear: float = 0.0, mode: str = 'reflect'):
  """Each image zoomed by a factor uniform in [1 - max_scale, 1 + max_scale], rotated by an
  angle uniform in [-max_degrees, max_degrees] and sheared horizontally by a factor uniform in
  [-max_shear, max_shear] (x += shear * y, a slant) about its centre, resampled bilinearly.

  mode='reflect' reflects the edges (Olah et al. 2017's transformation robustness, for images
  being optimised); mode='constant' fills with 0 (a digit on a black ground).
  """
  if max_scale <= 0 and max_degrees <= 0 and max_shear <= 0:
    return x_NxHxWxC
  n, h, w, _ = x_NxHxWxC.shape
  k_scale, k_angle, k_shear = jax.random.split(key, 3)
  uniform = lambda k, bound: bound * jax.random.uniform(k, (n,), minval=-1.0, maxval=1.0)
  scale = 1.0 + uniform(k_scale, max_scale)
  angle = jnp.deg2rad(uniform(k_angle, max_degrees))
  shear = uniform(k_shear, max_shear)
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2,
                        jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing='ij')

  def one(image_HxWxC, s, a, k):
    # Output pixel -> source pixel: undo the shear, then the rotation and the zoom.
    ux = xx - k * yy
    cos, sin = jnp.cos(a) / s, jnp.sin(a) / s
    src_y = cos * yy - sin * ux + (h - 1) / 2
    src_x = sin * yy + cos * ux + (w - 1) / 2
    sample = lambda channel: jax.scipy.ndimage.map_coordinates(
        channel, [src_y, src_x], order=1, mode=mode, cval=0.0)
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image_HxWxC)

  return jax.vmap(one)(x_NxHxWxC, scale, angle, shear)


def random_stroke(x_NxHxWxC, key, max_offset: float):
  """Each image's ink redrawn through a ramp x' = clip((x - t) / r + 1/2, 0, 1), threshold t
  uniform in [1/2 - max_offset, 1/2 + max_offset], width r uniform in [0.1, 1]: a high t thins
  the strokes, a low one thickens them, a narrow ramp sharpens a blurry digit into a nearly
  binary one (t = 1/2, r = 1 is the identity). Images in [0, 1]."""
  if max_offset <= 0:
    return x_NxHxWxC
  n = x_NxHxWxC.shape[0]
  k_t, k_r = jax.random.split(key)
  t = 0.5 + max_offset * jax.random.uniform(k_t, (n, 1, 1, 1), minval=-1.0, maxval=1.0)
  r = jax.random.uniform(k_r, (n, 1, 1, 1), minval=0.1, maxval=1.0)
  return jnp.clip((x_NxHxWxC - t) / r + 0.5, 0.0, 1.0)


# -- what a GAN's discriminator sees (GANs trained on little data) ------------------------------
DIFFAUGMENT_POLICIES = ('color', 'translation', 'cutout')
ADA_OPS = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness',
           'contrast', 'lumaflip', 'hue', 'saturation', 'cutout')


def _per_image(key, n, low=0.0, high=1.0):
  return jax.random.uniform(key, (n, 1, 1, 1), minval=low, maxval=high)


def translate_int(x_NxHxWxC, shift_Nx2):
  """out[i, j] = x[i + dy, j + dx], zeros outside: integer shifts, differentiable in x."""
  n, h, w, _ = x_NxHxWxC.shape
  ii = jnp.arange(h)[None, :, None] + shift_Nx2[:, 0, None, None]
  jj = jnp.arange(w)[None, None, :] + shift_Nx2[:, 1, None, None]
  inside = ((ii >= 0) & (ii < h) & (jj >= 0) & (jj < w))[..., None]
  rows = jnp.arange(n)[:, None, None]
  return jnp.where(inside, x_NxHxWxC[rows, jnp.clip(ii, 0, h - 1), jnp.clip(jj, 0, w - 1)], 0)


def cutout_mask(key, n, h, w, ratio: float = 0.5):
  """(N, H, W, 1): 0 inside a square of `ratio` of the sides centred uniformly (clipped at the
  border), 1 elsewhere; DiffAugment's rand_cutout, offsets drawn as it draws them."""
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  oy = jax.random.randint(ky, (n, 1, 1), 0, h + (1 - ch % 2)) - ch // 2
  ox = jax.random.randint(kx, (n, 1, 1), 0, w + (1 - cw % 2)) - cw // 2
  ii, jj = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  cut = (ii >= oy) & (ii < oy + ch) & (jj >= ox) & (jj < ox + cw)
  return (~cut)[..., None].astype(jnp.float32)


def diffaugment(x_NxHxWxC, key, policy):
  """DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training", Sec. 3: D sees T(x) and T(G(z)) in both players' losses, T differentiable), as
  the official DiffAugment_pytorch.py draws it, on images in [-1, 1]:
    color        x + U[-1/2, 1/2); (x - mean_channels) U[0, 2) + mean; (x - mean) U[1/2, 3/2) + mean
    translation  an integer shift of up to 1/8 of each side, zeros (grey) shifted in
    cutout       a square of half the sides set to zero
  """
  n, h, w, _ = x_NxHxWxC.shape
  keys = jax.random.split(key, 5)
  if 'color' in policy:
    x_NxHxWxC = x_NxHxWxC + _per_image(keys[0], n, -0.5, 0.5)
    mean = jnp.mean(x_NxHxWxC, axis=-1, keepdims=True)
    x_NxHxWxC = (x_NxHxWxC - mean) * _per_image(keys[1], n, 0.0, 2.0) + mean
    mean = jnp.mean(x_NxHxWxC, axis=(1, 2, 3), keepdims=True)
    x_NxHxWxC = (x_NxHxWxC - mean) * _per_image(keys[2], n, 0.5, 1.5) + mean
  if 'translation' in policy:
    limit = jnp.array([int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)])
    shift = jax.random.randint(keys[3], (n, 2), -limit, limit + 1)
    x_NxHxWxC = translate_int(x_NxHxWxC, shift)
  if 'cutout' in policy:
    x_NxHxWxC = x_NxHxWxC * cutout_mask(keys[4], n, h, w)
  return x_NxHxWxC


def _rotation(theta):
  c, s = jnp.cos(theta), jnp.sin(theta)
  one, zero = jnp.ones_like(theta), jnp.zeros_like(theta)
  return jnp.stack([jnp.stack([c, -s, zero], -1), jnp.stack([s, c, zero], -1),
                    jnp.stack([zero, zero, one], -1)], -2)


def _scaling(sx, sy):
  one, zero = jnp.ones_like(sx), jnp.zeros_like(sx)
  return jnp.stack([jnp.stack([sx, zero, zero], -1), jnp.stack([zero, sy, zero], -1),
                    jnp.stack([zero, zero, one], -1)], -2)


def _translation(tx, ty):
  one, zero = jnp.ones_like(tx), jnp.zeros_like(tx)
  return jnp.stack([jnp.stack([one, zero, tx], -1), jnp.stack([zero, one, ty], -1),
                    jnp.stack([zero, zero, one], -1)], -2)


def ada(x_NxHxWxC, key, p, ops):
  """ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks
  with Limited Data", Sec. 2.2-3 and Appendix B; stylegan2-ada-pytorch training/augment.py),
  on images in [-1, 1]: each op in `ops` is applied to each image independently with
  probability p (the two rotations with 1 - sqrt(1 - p), so that one happens with p), with the
  reference's distributions: xflip; rotate90 (k pi/2); xint (integer shift U(-1/8, 1/8) of the
  side); scale 2^N(0, 0.2^2); rotate U(-pi, pi); aniso 2^N(0, 0.2^2) in x, its inverse in y;
  xfrac (shift N(0, (1/8 side)^2)); brightness + N(0, 0.2^2); contrast x 2^N(0, 0.5^2);
  lumaflip; hue rotation U(-pi, pi) about the grey axis; saturation x 2^N(0, 1); cutout (half
  the side). p < 0.8 keeps them non-leaking (Sec. 2.2).

  Where it departs from the reference: the geometric ops are one bilinear resampling with
  mirrored edges at the image's own resolution, not a 2x supersampled resampling with the
  reference's wavelet filters, and the image-space filtering and noise ops are left out.
  """
  n, h, w, c = x_NxHxWxC.shape
  keys = iter(jax.random.split(key, 32))   # more than the draws below
  p = jnp.asarray(p, jnp.float32)
  p_rot = 1.0 - jnp.sqrt(jnp.clip(1.0 - p, 0.0, 1.0))

  def gate(prob, value, identity):
    """value where an image's draw falls under prob, identity elsewhere: one draw per image,
    shared by the trailing axes of value ((N,) or (N, 2))."""
    on = jax.random.uniform(next(keys), (n,)) < prob
    return jnp.where(on.reshape(n, *([1] * (jnp.ndim(value) - 1))), value, identity)

  def normal(std):
    return std * jax.random.normal(next(keys), (n,))

  eye = jnp.broadcast_to(jnp.eye(3), (n, 3, 3))
  g = eye   # output pixel (centred) -> input pixel (centred), composed as the reference does
  if 'xflip' in ops:
    flip = gate(p, jnp.floor(jax.random.uniform(next(keys), (n,)) * 2), 0.0)
    g = g @ _scaling(1 - 2 * flip, jnp.ones(n))
  if 'rotate90' in ops:
    k = gate(p, jnp.floor(jax.random.uniform(next(keys), (n,)) * 4), 0.0)
    g = g @ _rotation(-jnp.pi / 2 * k)
  if 'xint' in ops:
    t = gate(p, jnp.round(jax.random.uniform(next(keys), (n, 2), minval=-0.125, maxval=0.125) *
                          jnp.array([w, h])), 0.0)
    g = g @ _translation(t[:, 0], t[:, 1])
  if 'scale' in ops:
    s = gate(p, jnp.exp2(normal(0.2)), 1.0)
    g = g @ _scaling(1 / s, 1 / s)
  if 'rotate' in ops:
    g = g @ _rotation(-gate(p_rot, jax.random.uniform(next(keys), (n,), minval=-jnp.pi,
                                                       maxval=jnp.pi), 0.0))
  if 'aniso' in ops:
    s = gate(p, jnp.exp2(normal(0.2)), 1.0)
    g = g @ _scaling(1 / s, s)
  if 'rotate' in ops:
    g = g @ _rotation(-gate(p_rot, jax.random.uniform(next(keys), (n,), minval=-jnp.pi,
                                                       maxval=jnp.pi), 0.0))
  if 'xfrac' in ops:
    t = gate(p, 0.125 * jax.random.normal(next(keys), (n, 2)) * jnp.array([w, h]), 0.0)
    g = g @ _translation(t[:, 0], t[:, 1])
  if any(op in ops for op in ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso',
                               'xfrac')):
    x_NxHxWxC = _resample(x_NxHxWxC, g)

  color = jnp.broadcast_to(jnp.eye(4), (n, 4, 4))
  v = jnp.array([1.0, 1.0, 1.0, 0.0]) / jnp.sqrt(3.0)   # the grey axis
  vv = jnp.outer(v, v)
  if 'brightness' in ops:
    b = gate(p, normal(0.2), 0.0)
    color = _translate3(b) @ color
  if 'contrast' in ops:
    s = gate(p, jnp.exp2(normal(0.5)), 1.0)
    color = (s[:, None, None] * jnp.diag(jnp.array([1.0, 1.0, 1.0, 0.0])) +
             jnp.diag(jnp.array([0.0, 0.0, 0.0, 1.0]))) @ color
  if 'lumaflip' in ops:
    i = gate(p, jnp.floor(jax.random.uniform(next(keys), (n,)) * 2), 0.0)
    color = (jnp.eye(4) - 2 * vv * i[:, None, None]) @ color
  if 'hue' in ops and c > 1:
    theta = gate(p, jax.random.uniform(next(keys), (n,), minval=-jnp.pi, maxval=jnp.pi), 0.0)
    color = _rotate_about(v[:3], theta) @ color
  if 'saturation' in ops and c > 1:
    s = gate(p, jnp.exp2(normal(1.0)), 1.0)
    color = (vv + (jnp.eye(4) - vv) * s[:, None, None]) @ color
  if any(op in ops for op in ('brightness', 'contrast', 'lumaflip', 'hue', 'saturation')):
    if c == 3:
      x_NxHxWxC = (jnp.einsum('nij,nhwj->nhwi', color[:, :3, :3], x_NxHxWxC) +
                   color[:, None, None, :3, 3])
    else:  # grey: the reference's mean of the RGB rows
      m = jnp.mean(color[:, :3, :], axis=1)                           # (N, 4)
      x_NxHxWxC = (x_NxHxWxC * jnp.sum(m[:, :3], -1)[:, None, None, None] +
                   m[:, 3][:, None, None, None])
  if 'cutout' in ops:
    on = (jax.random.uniform(next(keys), (n, 1, 1, 1)) < p).astype(jnp.float32)
    mask = cutout_mask(next(keys), n, h, w)
    x_NxHxWxC = x_NxHxWxC * (1 - on + on * mask)
  return x_NxHxWxC


def _translate3(b):
  t = jnp.broadcast_to(jnp.eye(4), (b.shape[0], 4, 4))
  return t.at[:, :3, 3].set(b[:, None])


def _rotate_about(axis_3, theta_N):
  """Rotation by theta about a unit axis (Rodrigues), as (N, 4, 4) homogeneous matrices."""
  x, y, z = axis_3
  k = jnp.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
  r = (jnp.eye(3) + jnp.sin(theta_N)[:, None, None] * k +
       (1 - jnp.cos(theta_N))[:, None, None] * (k @ k))
  return jnp.broadcast_to(jnp.eye(4), (theta_N.shape[0], 4, 4)).at[:, :3, :3].set(r)


def _resample(x_NxHxWxC, g_Nx3x3):
  """out(u) = x(g u) in pixel coordinates about the centre, bilinear, edges mirrored."""
  _, h, w, _ = x_NxHxWxC.shape
  yy, xx = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2,
                        jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2, indexing='ij')

  def one(image_HxWxC, g):
    src_x = g[0, 0] * xx + g[0, 1] * yy + g[0, 2] + (w - 1) / 2
    src_y = g[1, 0] * xx + g[1, 1] * yy + g[1, 2] + (h - 1) / 2
    sample = lambda channel: jax.scipy.ndimage.map_coordinates(
        channel, [src_y, src_x], order=1, mode='mirror')
    return jax.vmap(sample, in_axes=-1, out_axes=-1)(image_HxWxC)

  return jax.vmap(one)(x_NxHxWxC, g_Nx3x3)


def ada_update(p, signs_mean, target: float, images_per_update: int, kimg: float):
  """ADA's heuristic (Karras et al. 2020, Sec. 3; stylegan2-ada-pytorch training_loop.py): with
  r_t = E[sign(D_train(x_real))] over the last interval, p += sign(r_t - target) x
  (images seen in the interval) / (kimg x 1000), floored at 0 as the reference floors it."""
  return jnp.maximum(p + jnp.sign(signs_mean - target) * images_per_update / (kimg * 1000.0), 0.0)
