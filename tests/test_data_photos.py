"""Single photos for the networks run in reverse: named ones that ship in packages, and files."""
import numpy as np
import pytest
from PIL import Image

from genlab.data import photos
from genlab.errors import UserError


@pytest.mark.parametrize('spec', ['skimage:astronaut', 'sklearn:china.jpg',
                                  'matplotlib:grace_hopper.jpg'])
def test_named_photos_ship_offline_as_rgb_in_unit_range(spec):
  x = photos.load(spec)
  assert x.dtype == np.float32 and x.ndim == 3 and x.shape[-1] == 3
  assert 0.0 <= x.min() < 0.2 and 0.8 < x.max() <= 1.0  # a real photo, not a blank


def test_max_side_downscales_by_area_and_keeps_the_aspect(tmp_path):
  full = photos.load('skimage:coffee')             # 400 x 600
  small = photos.load('skimage:coffee', max_side=150)
  assert small.shape == (100, 150, 3)
  np.testing.assert_allclose(small.mean(axis=(0, 1)), full.mean(axis=(0, 1)), atol=2e-3)
  assert photos.load('skimage:coffee', max_side=1000).shape == full.shape  # never upscaled


def test_a_file_reads_back_and_grey_or_alpha_are_converted_and_said(tmp_path, capsys):
  rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'rgb.png')
  np.testing.assert_allclose(photos.load(str(tmp_path / 'rgb.png')), rgb / 255.0, atol=1e-6)
  assert capsys.readouterr().err == ''

  Image.fromarray(rgb[..., 0]).save(tmp_path / 'grey.png')
  grey = photos.load(str(tmp_path / 'grey.png'))
  assert grey.shape == (20, 30, 3) and np.array_equal(grey[..., 0], grey[..., 2])
  assert 'is grey: repeated into 3 channels' in capsys.readouterr().err

  rgba = np.concatenate([rgb, np.zeros((20, 30, 1), np.uint8)], axis=-1)  # fully transparent
  Image.fromarray(rgba).save(tmp_path / 'clear.png')
  np.testing.assert_allclose(photos.load(str(tmp_path / 'clear.png')), 1.0)  # white
  assert 'alpha channel: composited over white' in capsys.readouterr().err


def test_bad_images_are_one_line_saying_what_to_give(tmp_path):
  (tmp_path / 'notes.png').write_text('not a picture')
  cases = {str(tmp_path / 'missing.jpg'): 'does not exist',
           str(tmp_path / 'notes.png'): 'is not an image that can be read',
           'skimage:nonexistent': "give one of skimage:astronaut",
           'sklearn:china.png': 'sklearn:china.jpg',
           '': 'No image given'}
  for spec, words in cases.items():
    with pytest.raises(UserError, match=words) as e:
      photos.load(spec)
    assert '\n' not in str(e.value)
