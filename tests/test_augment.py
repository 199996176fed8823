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


# -- what a GAN's discriminator sees ---------------------------------------------------------------
def _dot(n=64, size=16):
  """A single bright pixel at the centre of a [-1, 1] image (background -1)."""
  return (-jnp.ones((n, size, size, 1))).at[:, size // 2, size // 2, 0].set(1.0)


def test_diffaugment_translation_moves_by_whole_pixels_up_to_an_eighth_and_fills_zeros():
  x = _dot()
  y = np.asarray(augment.diffaugment(x, jax.random.key(0), ('translation',)))
  peaks = [np.argwhere(im[..., 0] == 1.0) for im in y]
  shifts = np.array([p[0] - 8 for p in peaks if len(p) == 1])
  assert len(shifts) == 64 and np.abs(shifts).max() == 2              # 16 / 8 = 2 pixels
  assert len({tuple(s) for s in shifts}) > 10                         # and they vary
  assert set(np.unique(y)) <= {-1.0, 0.0, 1.0}                        # zeros come in
  moved = np.abs(shifts).max(1) > 0
  assert np.all((y == 0).any((1, 2, 3))[moved])


def test_diffaugment_cutout_zeroes_half_the_side_and_colour_is_per_image():
  x = jnp.full((32, 16, 16, 3), 0.5)
  cut = np.asarray(augment.diffaugment(x, jax.random.key(1), ('cutout',)))
  zeros = (cut == 0).all(-1).sum((1, 2))
  assert zeros.max() == 64 and zeros.min() >= 16                      # 8x8, clipped at edges
  colour = np.asarray(augment.diffaugment(x, jax.random.key(1), ('color',)))
  assert np.allclose(colour, colour[:, :1, :1, :1])                  # flat stays flat
  assert np.ptp(colour[:, 0, 0, 0]) > 0.3                            # brightness per image
  g = jax.grad(lambda v: jnp.sum(
      augment.diffaugment(v, jax.random.key(2), augment.DIFFAUGMENT_POLICIES) ** 2))(x)
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0


def test_ada_is_the_identity_at_p_0_and_applies_each_op_with_probability_p():
  x = jax.random.uniform(jax.random.key(0), (4, 16, 16, 3)) * 2 - 1
  np.testing.assert_array_equal(augment.ada(x, jax.random.key(1), 0.0, augment.ADA_OPS), x)
  dots = _dot(n=4000)
  for p in (0.2, 0.6):
    y = np.asarray(augment.ada(dots, jax.random.key(2), p, ('xint',)))
    moved = np.mean(y[:, 8, 8, 0] != 1.0)
    # one draw per image for both axes; U(-2, 2) rounds to 0 on both with probability 1/16
    assert abs(moved - p * (1 - 1 / 16)) < 0.03, (p, moved)


def test_ada_brightness_and_contrast_on_grey_follow_the_reference_means():
  x = jnp.zeros((20000, 2, 2, 1)).at[:, 0, 0, 0].set(0.5)
  bright = np.asarray(augment.ada(x, jax.random.key(0), 1.0, ('brightness',)))
  offsets = bright[:, 1, 1, 0]                       # 0 + b, b ~ N(0, 0.2^2)
  assert abs(offsets.std() - 0.2) < 0.01 and abs(offsets.mean()) < 0.01
  np.testing.assert_allclose(bright[:, 0, 0, 0] - offsets, 0.5, atol=1e-6)
  contrast = np.asarray(augment.ada(x, jax.random.key(0), 1.0, ('contrast',)))[:, 0, 0, 0]
  assert abs(np.log2(contrast / 0.5).std() - 0.5) < 0.02      # 2^N(0, 0.5^2)


def test_ada_geometry_is_differentiable_and_rotates_about_the_centre():
  yy, xx = np.mgrid[:17, :17] - 8
  disc = jnp.asarray(2 * np.exp(-(yy ** 2 + xx ** 2) / 18.0) - 1, jnp.float32)[None, ..., None]
  y = augment.ada(jnp.tile(disc, (16, 1, 1, 1)), jax.random.key(3), 1.0, ('rotate', 'rotate90',
                                                                            'xflip'))
  inside = (yy ** 2 + xx ** 2 <= 64)[None, ..., None]   # corners come from mirrored edges
  np.testing.assert_allclose(np.where(inside, y, 0),
                             np.broadcast_to(np.where(inside, disc, 0), y.shape), atol=0.05)
  g = jax.grad(lambda v: jnp.sum(augment.ada(v, jax.random.key(4), 0.7, augment.ADA_OPS)))(
      jnp.tile(disc, (4, 1, 1, 3)))
  assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0
