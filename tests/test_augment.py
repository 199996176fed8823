"""Random image transformations (genlab/augment.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from genlab import augment


def test_affine_is_the_identity_at_zero_and_a_rotation_otherwise():
  x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  np.testing.assert_array_equal(augment.random_affine(x, jax.random.key(2)), x)
  y = augment.random_affine(x, jax.random.key(2), max_scale=0.1, max_degrees=10.0)
  assert y.shape == x.shape and not np.allclose(y, x)
  assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_shear_slants_a_vertical_bar_and_constant_mode_fills_black():
  x = jnp.zeros((64, 21, 21, 1)).at[:, 2:19, 10, 0].set(1.0)  # a vertical stroke, centred
  y = np.asarray(augment.random_affine(x, jax.random.key(0), max_shear=0.5, mode='constant'))
  cols = np.arange(21)
  top = (y[:, 3, :, 0] * cols).sum(-1) / y[:, 3, :, 0].sum(-1)      # the stroke's column
  bottom = (y[:, 17, :, 0] * cols).sum(-1) / y[:, 17, :, 0].sum(-1)
  centre = (y[:, 10, :, 0] * cols).sum(-1) / y[:, 10, :, 0].sum(-1)
  slant = (bottom - top) / 14                                       # x += shear * y
  assert np.all(np.abs(slant) <= 0.5 + 1e-3) and np.abs(slant).max() > 0.3
  np.testing.assert_allclose(centre, 10.0, atol=1e-3)               # about the centre
  assert np.all(y[:, 0, :, 0] == 0)                                 # black in, black out
  np.testing.assert_allclose(y.sum((1, 2, 3)), 17.0, rtol=0.05)     # a shear keeps the area


def test_stroke_ramp_thins_thickens_and_keeps_the_range():
  ramp = jnp.tile(jnp.linspace(0.0, 1.0, 11)[None, :, None, None], (256, 1, 1, 1))
  np.testing.assert_array_equal(augment.random_stroke(ramp, jax.random.key(0), 0.0), ramp)
  y = np.asarray(augment.random_stroke(ramp, jax.random.key(0), 0.25))
  assert y.min() == 0.0 and y.max() == 1.0
  assert np.all(np.diff(y[..., 0, 0], axis=1) >= 0)                 # the order of grey levels
  ink = y.sum((1, 2, 3))                                            # thinner and thicker
  assert ink.min() < 0.8 * float(ramp[0].sum()) < 1.25 * float(ramp[0].sum()) < ink.max()
