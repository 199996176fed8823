"""Image grids, interpolation strips and latent-manifold grids, as float arrays and PNGs.

Every function takes and returns float images in [0, 1] with a channel axis, (N, H, W, C) or
(H, W, C). Methods build their pictures from these; the trainer writes them with `save_png`.
"""
from __future__ import annotations

import math
import os

import jax
import numpy as np
from PIL import Image


def image_grid(images_NxHxWxC: np.ndarray, ncols: int, pad: int = 1,
               pad_value: float = 0.5) -> np.ndarray:
  """Tiles N images row by row into a (rows*H + (rows-1)*pad, ncols*W + (ncols-1)*pad, C) grid.

  Image i sits in row i // ncols, column i % ncols; `pad` pixels of `pad_value` separate the
  cells (no outer border), and cells after the last image are `pad_value`.
  """
  images = np.asarray(images_NxHxWxC, np.float32)
  if images.ndim != 4:
    raise ValueError(f'image_grid wants (N, H, W, C) images, got shape {images.shape}')
  n, h, w, c = images.shape
  ncols = max(1, min(int(ncols), n))
  nrows = math.ceil(n / ncols)
  grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad, c), pad_value, np.float32)
  for i in range(n):
    top, left = (i // ncols) * (h + pad), (i % ncols) * (w + pad)
    grid[top:top + h, left:left + w] = images[i]
  return grid


def interpolation_strip(strips_RxTxHxWxC: np.ndarray, pad: int = 1) -> np.ndarray:
  """R strips of T frames each -> a grid with one strip per row."""
  strips = np.asarray(strips_RxTxHxWxC)
  r, t = strips.shape[:2]
  return image_grid(strips.reshape(r * t, *strips.shape[2:]), ncols=t, pad=pad)


def manifold_latents(grid_size: int) -> np.ndarray:
  """(grid_size^2, 2) latents for Kingma & Welling 2014, Fig. 4: a linearly spaced grid on the
  open unit square, mapped through the inverse Gaussian CDF (so cells have equal prior mass).

  Row-major for `image_grid(ncols=grid_size)`: z_1 grows left to right, z_2 bottom to top.
  """
  u = (np.arange(grid_size) + 0.5) / grid_size      # cell centres: never 0 or 1 (ndtri = inf)
  z = np.asarray(jax.scipy.special.ndtri(u.astype(np.float32)))
  z1, z2 = np.meshgrid(z, z[::-1])
  return np.stack([z1.ravel(), z2.ravel()], axis=-1).astype(np.float32)


def to_uint8(grid_HxWxC: np.ndarray) -> np.ndarray:
  return np.round(np.clip(np.asarray(grid_HxWxC, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def save_png(path: str, grid_HxWxC: np.ndarray, scale: int = 1) -> None:
  """Writes a [0, 1] grid as PNG: grayscale for C=1, RGB for C=3, RGBA for C=4.

  `scale` > 1 enlarges by pixel repetition (nearest neighbour), e.g. for 8x8 digits.
  """
  pixels = to_uint8(grid_HxWxC)
  if pixels.ndim == 2:
    pixels = pixels[..., None]
  if pixels.shape[-1] not in (1, 3, 4):
    raise ValueError(f'save_png wants 1, 3 or 4 channels, got shape {pixels.shape}')
  if scale > 1:
    pixels = pixels.repeat(scale, axis=0).repeat(scale, axis=1)
  if pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(pixels).save(path)


def square_grid(images_NxHxWxC: np.ndarray) -> np.ndarray:
  """One image as it is, several as a near-square grid (ceil(sqrt(N)) columns)."""
  images = np.asarray(images_NxHxWxC)
  if len(images) == 1:
    return images[0]
  return image_grid(images, ncols=int(math.ceil(math.sqrt(len(images)))))


def load_png(path: str) -> np.ndarray:
  """A PNG that save_png wrote, back as float32 (H, W, 3) RGB in [0, 1]."""
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB'), np.float32) / 255.0


def scatter_codes(codes_Nx2: np.ndarray, labels_N: np.ndarray, title: str = '',
                  size_px: int = 480) -> np.ndarray:
  """A scatter plot of 2-D codes coloured by label (tab10, with a legend) -> (H, W, 3)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  codes, labels = np.asarray(codes_Nx2, np.float64), np.asarray(labels_N)
  if codes.ndim != 2 or codes.shape[1] != 2:
    raise ValueError(f'scatter_codes wants (N, 2) codes, got shape {codes.shape}')
  dpi = 100
  fig = Figure(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
  canvas = FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  for c in np.unique(labels):
    sel = labels == c
    ax.scatter(codes[sel, 0], codes[sel, 1], s=6, alpha=0.8, label=str(c),
               color=matplotlib.colormaps['tab10'](int(c) % 10))
  ax.legend(markerscale=2, fontsize=7, loc='best', ncols=2)
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  canvas.draw()
  return np.asarray(canvas.buffer_rgba(), np.float32)[..., :3] / 255.0
