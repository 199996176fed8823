"""ImageNet VGG16 features for natural-image sample metrics (`fid_vgg16`, `kid_vgg16`).

The digit classifier (genlab/pretrained/digit_classifier.py) does not apply to CIFAR-10 or
CelebA, and Inception's weights do not ship in any package here; VGG16's do
(genlab/pretrained/vgg.py). A feature is the spatial mean of relu5_3 (512-d) of the image
resized to `size` x `size` (bilinear, antialiased): 224, VGG's training resolution, by
default. The numbers are comparable between genlab models at the same size and sample count,
and are named so that nobody mistakes them for Inception FID/KID.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genlab.errors import UserError
from genlab.pretrained import vgg

LAYER = 'relu5_3'


class VGGFeatures:

  def __init__(self, size: int = 224, chunk_size: int = 50):
    if size < 32:
      raise UserError(f'VGG16 features need images of at least 32 px (5 poolings): got '
                      f'size={size}.')
    self.size, self.chunk_size = int(size), int(chunk_size)
    self.dim = 512
    params = vgg.load_vgg16()
    module = vgg.VGG(depth=16)

    def fn(x_NxHxWxC):
      n, _, _, c = x_NxHxWxC.shape
      x = jax.image.resize(x_NxHxWxC, (n, self.size, self.size, c), 'bilinear', antialias=True)
      if c == 1:  # grey digits: the RGB network sees three equal channels
        x = jnp.repeat(x, 3, axis=-1)
      return jnp.mean(module.apply({'params': params}, x, layers=(LAYER,))[LAYER], axis=(1, 2))

    self._fn = jax.jit(fn)

  def embed(self, images_NxHxWxC) -> np.ndarray:
    """(N, 512) float32 features of float32 images in [0, 1] with 1 or 3 channels."""
    x = np.asarray(images_NxHxWxC, np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise UserError(f'VGG16 features take (N, H, W, 1 or 3) images, got {x.shape}.')
    rows, c = [], self.chunk_size
    for start in range(0, len(x), c):
      chunk = x[start:start + c]
      real = len(chunk)
      if real < c:  # One compiled shape: pad the last chunk, drop those rows.
        chunk = np.concatenate([chunk, np.zeros((c - real, *x.shape[1:]), np.float32)])
      rows.append(np.asarray(self._fn(chunk))[:real])
    return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)
