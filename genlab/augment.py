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
