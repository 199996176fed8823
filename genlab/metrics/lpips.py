"""LPIPS, the learned perceptual image patch similarity (Zhang et al. 2018, "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric"), version 0.1 with the official heads.

Eq. 1 of the paper: for images x, x0, unit-normalised (along channels) features y^l, y0^l of
layer l of a fixed network, of spatial size H_l x W_l, and learned per-channel weights w_l,

  d(x, x0) = sum_l 1/(H_l W_l) sum_{h,w} || w_l * (y^l_hw - y0^l_hw) ||_2^2,

where w_l * . is a 1x1 convolution to one channel applied to the squared differences (the
official code's form, which is Eq. 1 with w_l squared into the heads). The layers are VGG16's
relu1_2 .. relu5_3 or AlexNet's relu1 .. relu5 with torchvision's ImageNet weights
(genlab/pretrained/vgg.py).

  d = lpips(x, y, net='vgg16')       # NHWC float images in [0, 1] -> (N,) distances
  ev = Evaluator('alexnet'); d = ev(x, y)

`LPIPS` is the flax module (differentiable, for losses); it takes images in [-1, 1], as the
official code does. `Evaluator` holds the weights and one jitted function per input shape.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genlab.errors import UserError
from genlab.pretrained import vgg

# The official ScalingLayer: ImageNet's mean and std rewritten for [-1, 1] inputs
# (shift = 2 * mean - 1, scale = 2 * std), so LPIPS sees what torchvision's weights expect.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # the official normalize_tensor's epsilon, added to the channel norm
# Values outside [0, 1] by more than this are a caller's mistake (e.g. 0..255 or [-1, 1]).
_RANGE_TOLERANCE = 1e-3


def _unit(f):
  """Unit-normalises features along channels (y^l_hw / ||y^l_hw||, Eq. 1)."""
  return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + _EPS)


class LPIPS(nn.Module):
  """d(x, y) of Eq. 1 for NHWC images in [-1, 1]; returns (N,) distances.

  Params: {'net': the backbone's (vgg.load_vgg16() / load_alexnet()),
           'heads': vgg.load_lpips_heads(net)}.
  """
  net: str = 'vgg16'

  @nn.compact
  def __call__(self, x, y):
    trunk = vgg.backbone(self.net, normalize_input=False, name='net')  # raises if unknown
    taps = vgg.LPIPS_TAPS[self.net]
    shift = jnp.asarray(SHIFT, x.dtype)
    scale = jnp.asarray(SCALE, x.dtype)
    n = x.shape[0]
    # One forward pass over both batches: one compiled network, twice the batch.
    feats = trunk((jnp.concatenate([x, y]) - shift) / scale, layers=taps)
    diffs = [(_unit(feats[t][:n]) - _unit(feats[t][n:])) ** 2 for t in taps]
    per_layer = vgg.LinearHeads(len(taps), name='heads')(diffs)
    return sum(jnp.mean(d, axis=(1, 2, 3)) for d in per_layer)  # spatial mean, sum over l


def load_params(net: str = 'vgg16') -> dict:
  """LPIPS(net)'s params: torchvision's trunk and the official v0.1 heads."""
  trunk = vgg.load_vgg16() if net == 'vgg16' else vgg.load_alexnet() if net == 'alexnet' else None
  if trunk is None:
    raise UserError(f'net={net!r} is not known for LPIPS: use one of {list(vgg.NETS)}.')
  return {'net': trunk, 'heads': vgg.load_lpips_heads(net)}


class Evaluator:
  """LPIPS(net) with its weights loaded once, on numpy images in [0, 1]."""

  def __init__(self, net: str = 'vgg16'):
    self.net = net
    self.params = load_params(net)
    module = LPIPS(net)
    # [0, 1] -> [-1, 1] inside the jitted function, as the official code expects.
    self._fn = jax.jit(lambda p, a, b: module.apply({'params': p}, 2 * a - 1, 2 * b - 1))

  def __call__(self, x, y) -> np.ndarray:
    """(N,) distances between NHWC images x and y (3 channels, or 1, repeated to RGB)."""
    x, y = _images(x, 'x'), _images(y, 'y')
    if x.shape != y.shape:
      raise UserError(f'LPIPS compares images of one shape: got x {x.shape} and y {y.shape}.')
    return np.asarray(self._fn(self.params, x, y))


def _images(a, what) -> np.ndarray:
  a = np.asarray(a, np.float32)
  if a.ndim != 4 or a.shape[-1] not in (1, 3):
    raise UserError(f'LPIPS takes NHWC images with 1 or 3 channels: {what} has shape {a.shape}.')
  lo, hi = float(a.min(initial=0.0)), float(a.max(initial=0.0))
  if lo < -_RANGE_TOLERANCE or hi > 1 + _RANGE_TOLERANCE:
    raise UserError(f'LPIPS takes images in [0, 1]: {what} spans [{lo:.3g}, {hi:.3g}].')
  if a.shape[-1] == 1:  # Grey images as RGB, which is what the ImageNet trunks were trained on.
    a = np.repeat(a, 3, axis=-1)
  return a


@functools.lru_cache(maxsize=None)
def evaluator(net: str = 'vgg16') -> Evaluator:
  """One Evaluator per net per process (the weights load and the compile happen once)."""
  return Evaluator(net)


def lpips(x, y, net: str = 'vgg16') -> np.ndarray:
  """(N,) LPIPS distances between NHWC images x and y in [0, 1] (Eq. 1, v0.1 heads)."""
  return evaluator(net)(x, y)
