"""fid_vgg16 / kid_vgg16's features: ImageNet VGG16 on real photos."""
import numpy as np
import pytest

from conftest import fetched
from genlab.data import photos
from genlab.errors import UserError
from genlab.metrics import sample_quality


@pytest.fixture(scope='module')
def features():
  from genlab.metrics import vgg_features  # pylint: disable=g-import-not-at-top
  return fetched(lambda: vgg_features.VGGFeatures(size=64, chunk_size=16))


def _crops(spec, n, seed):
  image = photos.load(spec, max_side=256)
  rng = np.random.default_rng(seed)
  tops = rng.integers(0, image.shape[0] - 48, n)
  lefts = rng.integers(0, image.shape[1] - 48, n)
  return np.stack([image[t:t + 48, l:l + 48] for t, l in zip(tops, lefts)])


def test_crops_of_one_photo_are_closer_than_crops_of_another(features):
  crops = _crops('skimage:astronaut', 24, 0)
  a1 = features.embed(crops)
  a2 = features.embed(_crops('skimage:astronaut', 24, 1))
  coffee = features.embed(_crops('skimage:coffee', 24, 2))
  assert a1.shape == (24, 512) and np.isfinite(a1).all()
  same, other = sample_quality.fid(a1, a2), sample_quality.fid(a1, coffee)
  assert same < 0.5 * other, (same, other)
  kid_same, _ = sample_quality.kid(a1, a2, num_subsets=10)
  kid_other, _ = sample_quality.kid(a1, coffee, num_subsets=10)
  assert kid_same < 0.5 * kid_other, (kid_same, kid_other)
  # Chunking does not change a row; grey images are embedded as RGB.
  np.testing.assert_allclose(features.embed(crops[:3]), a1[:3], rtol=1e-4, atol=1e-5)
  assert features.embed(crops[:2, ..., :1]).shape == (2, 512)
  with pytest.raises(UserError, match='1 or 3'):
    features.embed(np.zeros((2, 48, 48, 2), np.float32))
