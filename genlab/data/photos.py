"""Single photos for the methods that run a pretrained network in reverse (style transfer,
DeepDream, class visualisation): a file path, or a named photo that ships inside an installed
package, so the default experiments need no download.

  load('skimage:astronaut')              # scikit-image's sample data (skimage.data.<name>())
  load('sklearn:china.jpg')              # scikit-learn's sample images
  load('matplotlib:grace_hopper.jpg')    # matplotlib's sample data
  load('~/photos/tuebingen.jpg', max_side=512)

Every photo comes back as float32 (H, W, 3) RGB in [0, 1]. A grey photo is repeated into three
channels and one with alpha is composited over white, each said in one `genlab:` line, since
the ImageNet networks take RGB.
"""
from __future__ import annotations

import os

import numpy as np

from genlab import log
from genlab.errors import UserError

# The photos of each package that ship inside it (no fetch on first use), for the messages.
NAMED = {
    'skimage': ('astronaut', 'brick', 'camera', 'cat', 'chelsea', 'coffee', 'coins', 'grass',
                'gravel', 'hubble_deep_field', 'immunohistochemistry', 'moon', 'retina',
                'rocket', 'text'),
    'sklearn': ('china.jpg', 'flower.jpg'),
    'matplotlib': ('grace_hopper.jpg', 'Minduka_Present_Blue_Pack.png', 'logo2.png'),
}


def named_examples() -> str:
  return ', '.join(f'{pkg}:{name}' for pkg, names in NAMED.items() for name in names[:3])


def load(spec: str, max_side: int | None = None) -> np.ndarray:
  """The photo `spec` names (a path or 'package:name') as float32 (H, W, 3) in [0, 1],
  downscaled (area-averaged) so that its longer side is at most `max_side`."""
  if not isinstance(spec, str) or not spec.strip():
    raise UserError(f'No image given ({spec!r}): give a path or a named photo such as '
                    f'{named_examples()}.')
  package, _, name = spec.partition(':')
  if package in NAMED and name:
    image = _named(package, name, spec)
  else:
    image = _file(os.path.expanduser(spec))
  return _resize(_as_rgb(image, spec), max_side)


def _named(package: str, name: str, spec: str) -> np.ndarray:
  unknown = UserError(f'{spec!r} is not a photo of {package}: give one of '
                      f'{", ".join(f"{package}:{n}" for n in NAMED[package])}, or a path.')
  if package == 'skimage':
    import skimage.data  # pylint: disable=g-import-not-at-top
    if name not in NAMED['skimage']:
      raise unknown
    return getattr(skimage.data, name)()
  if package == 'sklearn':
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    if name not in NAMED['sklearn']:
      raise unknown
    return datasets.load_sample_image(name)
  import matplotlib  # pylint: disable=g-import-not-at-top
  path = os.path.join(matplotlib.get_data_path(), 'sample_data', name)
  if name not in NAMED['matplotlib'] or not os.path.isfile(path):
    raise unknown
  return _file(path)


def _file(path: str) -> np.ndarray:
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise UserError(f'Image {path} does not exist: give an image file, or a named photo such '
                    f'as {named_examples()}.')
  try:
    with Image.open(path) as image:
      image.load()
      if image.mode not in ('L', 'LA', 'RGB', 'RGBA'):
        image = image.convert('RGBA' if 'A' in image.getbands() else 'RGB')
      return np.asarray(image)
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UserError(f'{path} is not an image that can be read ({type(e).__name__}): give a '
                    'PNG or JPEG file.') from None


def _as_rgb(image: np.ndarray, spec: str) -> np.ndarray:
  x = np.asarray(image)
  x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
  if x.ndim == 2:
    x = x[..., None]
  if x.ndim != 3 or x.shape[-1] not in (1, 2, 3, 4):
    raise UserError(f'{spec} has shape {x.shape}, not (H, W[, C]) with 1-4 channels: give a '
                    'photo.')
  if x.shape[-1] in (2, 4):  # alpha: composite over white, where a viewer shows it.
    alpha = x[..., -1:]
    x = x[..., :-1] * alpha + (1.0 - alpha)
    log.info(f'{spec} has an alpha channel: composited over white.')
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
    log.info(f'{spec} is grey: repeated into 3 channels for an RGB network.')
  return np.clip(x, 0.0, 1.0)


def _resize(x: np.ndarray, max_side: int | None) -> np.ndarray:
  h, w = x.shape[:2]
  if max_side is None or max(h, w) <= max_side:
    return x
  from PIL import Image  # pylint: disable=g-import-not-at-top
  scale = max_side / max(h, w)
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  channels = [np.asarray(Image.fromarray(x[..., c]).resize(size, Image.Resampling.BOX))
              for c in range(3)]
  return np.stack(channels, axis=-1).astype(np.float32)
