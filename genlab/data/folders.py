"""A user's folder of images as a data set: `folder:PATH` reads the images of PATH/<split>/.

This is the layout of the official CycleGAN data sets (`trainA/ trainB/ testA/ testB/`): a
domain reads e.g. split 'trainA' for training and 'testA' for evaluation. Every file directly
in a split folder is an image (png, jpg, anything PIL opens; hidden files are skipped), in
file-name order; every label is 0. Here are only the listing and the reading of one file;
source.load_split decodes a split once per process into the cached uint8 arrays and crops,
resizes and converts channels exactly as for a TFDS split.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from genlab.errors import UserError

PREFIX = 'folder:'
_LAYOUT = 'one subfolder of images per split, e.g. trainA/ trainB/ testA/ testB/'


def is_folder(name) -> bool:
  """Whether data set `name` is a user's image folder, `folder:PATH`."""
  return isinstance(name, str) and name.startswith(PREFIX)


def root(name: str) -> str:
  """PATH of `folder:PATH`, with ~ expanded; UserError when it is not a folder."""
  path = os.path.expanduser(name[len(PREFIX):])
  if not path or not os.path.isdir(path):
    what = 'is not a folder' if os.path.exists(path) else 'does not exist'
    raise UserError(f"Image folder '{path}' (data set {name!r}) {what}: give a folder that "
                    f'holds {_LAYOUT}.')
  return path


def image_files(name: str, split: str) -> list[str]:
  """The paths of the images of split `split` of `folder:PATH`, sorted by file name."""
  path = root(name)
  folder = os.path.join(path, split)
  if not os.path.isdir(folder):
    present = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    raise UserError(f"Image folder '{path}' has no subfolder '{split}' for that split (it has: "
                    f"{', '.join(present) or 'none'}): set the split names to its subfolders; "
                    f'the expected layout is {_LAYOUT}.')
  paths = [os.path.join(folder, f) for f in sorted(os.listdir(folder))
           if not f.startswith('.') and os.path.isfile(os.path.join(folder, f))]
  if not paths:
    raise UserError(f"Folder '{folder}' holds no image files: put the split's images (png, "
                    'jpg, ...) in it, or pick another split.')
  return paths


def read_image(path: str) -> np.ndarray:
  """The image at `path` as uint8 (H, W, 1) for gray or (H, W, 3) for colour.

  Alpha is dropped (a training image is its colours), palette and other modes become RGB, and
  1-bit and 16-bit gray become 8-bit gray.
  """
  try:
    with Image.open(path) as image:
      image.load()
      if image.mode in ('1', 'L', 'LA'):
        array = np.asarray(image.convert('L'))
      elif image.mode.startswith(('I', 'F')):  # 16/32-bit integer or float gray
        array = _to_uint8(np.asarray(image))
      else:
        array = np.asarray(image.convert('RGB'))
  except (UnidentifiedImageError, OSError, ValueError) as e:
    reason = ' '.join(str(e).split()) or type(e).__name__
    raise UserError(f"'{path}' is not an image that PIL can read ({reason}): remove it from "
                    'its folder or replace it with a readable image.') from None
  return array[..., None] if array.ndim == 2 else array


def _to_uint8(x: np.ndarray) -> np.ndarray:
  """16-bit or float gray to 0..255: 16-bit scaled by 1/257, float taken as [0, 1]."""
  if np.issubdtype(x.dtype, np.floating):
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
  return np.clip(np.round(x.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
