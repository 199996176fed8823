"""Tests for genlab/viz.py: grid layout, strips, manifold latents and PNG round trips."""
import numpy as np
import pytest
from PIL import Image

from genlab import viz


def _constant_images(n, h=2, w=3, c=1):
  return np.stack([np.full((h, w, c), (i + 1) / (n + 1), np.float32) for i in range(n)])


def test_image_grid_layout():
  images = _constant_images(5)
  grid = viz.image_grid(images, ncols=3, pad=1, pad_value=0.0)
  assert grid.shape == (2 * 2 + 1, 3 * 3 + 2, 1)
  for i in range(5):
    top, left = (i // 3) * 3, (i % 3) * 4
    np.testing.assert_array_equal(grid[top:top + 2, left:left + 3], images[i])
  assert np.all(grid[2] == 0.0)             # the padding row between the rows
  assert np.all(grid[:, 3] == 0.0)          # the padding column after column 0
  assert np.all(grid[3:, 8:] == 0.0)        # the empty sixth cell


def test_image_grid_single_row_without_pad_is_a_concatenation():
  images = _constant_images(4, c=3)
  np.testing.assert_array_equal(viz.image_grid(images, ncols=10, pad=0),
                                np.concatenate(list(images), axis=1))


def test_interpolation_strip_puts_one_strip_per_row():
  strips = _constant_images(6).reshape(2, 3, 2, 3, 1)
  grid = viz.interpolation_strip(strips, pad=1)
  assert grid.shape == (5, 11, 1)
  np.testing.assert_array_equal(grid[3:5, 0:3], strips[1, 0])


def test_manifold_latents_are_gaussian_quantiles():
  z = viz.manifold_latents(4)
  assert z.shape == (16, 2) and np.all(np.isfinite(z))
  # Row-major: z1 grows along a row, z2 falls from the top row to the bottom row.
  assert np.all(np.diff(z[:4, 0]) > 0) and np.all(z[:4, 1] == z[0, 1])
  assert z[0, 1] > 0 > z[-1, 1]
  np.testing.assert_allclose(z[:4, 0], -z[:4, 0][::-1], atol=1e-6)   # symmetric about 0
  np.testing.assert_allclose(z[1, 0], -0.3186394, atol=1e-5)           # Phi^-1(3/8)


@pytest.mark.parametrize('channels,mode', [(1, 'L'), (3, 'RGB')])
def test_save_png_round_trip(tmp_path, channels, mode):
  grid = np.linspace(0, 1, 4 * 5 * channels, dtype=np.float32).reshape(4, 5, channels)
  path = tmp_path / 'sub' / 'grid.png'
  viz.save_png(str(path), grid, scale=2)
  image = Image.open(path)
  assert image.mode == mode and image.size == (10, 8)
  pixels = np.asarray(image).reshape(8, 10, channels)[::2, ::2]
  np.testing.assert_array_equal(pixels, np.round(grid * 255).astype(np.uint8))


def test_save_png_clips_out_of_range_values(tmp_path):
  path = tmp_path / 'clip.png'
  viz.save_png(str(path), np.array([[[-1.0], [2.0]]], np.float32))
  np.testing.assert_array_equal(np.asarray(Image.open(path)), [[0, 255]])
