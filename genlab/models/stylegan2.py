"""The StyleGAN2 networks (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", config F: weight demodulation, skip generator, residual discriminator), with the
mapping network and noise inputs of StyleGAN (Karras et al. 2019, "A Style-Based Generator
Architecture for Generative Adversarial Networks") and equalized learning rate (Karras et al.
2018, "Progressive Growing of GANs for Improved Quality, Stability, and Variation", Sec. 4.1).

Built as NVlabs/stylegan2-ada-pytorch builds them (training/networks.py, torch_utils/ops:
upfirdn2d's _upfirdn2d_ref and setup_filter, conv2d_resample, bias_act), unconditional
only. Pure Flax modules; truncation, the running average of w, the losses and the
regularisers live with the method.

Layouts differ from the reference's only as flax's do: images are channels-last (B, H, W, C);
dense kernels are (in, out) and conv kernels (kh, kw, in, out), i.e. the reference weight
transposed; the synthesis input 'const' is (4, 4, C). Every stored parameter is the
reference's parameter under that transpose (no flips, no rescaling), so the reference's
initialisation and equalized learning rate carry over unchanged: weights are stored N(0, 1) /
lr_multiplier and scaled by lr_multiplier / sqrt(fan_in) when used, biases by lr_multiplier.
The differences in the function: 'const' noise is not a stored random buffer but a fixed
draw per layer (`const_noise`); the discriminator also takes 4x4 images (fromRGB in the 4x4
epilogue), which the reference cannot. benchmarks/torch_stylegan2.py restates the reference's forward
pass in PyTorch and tests/test_models_stylegan2.py checks these modules against it.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from genlab import batch_split
from genlab.errors import UserError, one_of

# All three compute Karras et al. 2020, Eq. 1-3 and give the same function:
#   'grouped'    the batch folded into channels, one conv with feature_group_count=B (the
#                reference's fused_modconv=True, which it uses outside training);
#   'batched'    the per-sample weights, jax.vmap of a per-sample conv (XLA lowers it to the
#                same grouped conv);
#   'activation' scale the activations by the styles, one conv with the shared weight, scale
#                by the demodulation coefficients (the reference's fused_modconv=False, which
#                it uses in training).
# On XLA's CPU backend grouped convs run on a slow path: forward+backward of G and D at 32x32x1,
# channels 128, batch 32 took 61 s ('grouped'), 63 s ('batched') and 3.4 s ('activation')
# (jax 0.10.2, 2 shared cores). The default stays the reference's 'grouped'; on the CPU pick
# 'activation'.
MODCONV_IMPLS = ('grouped', 'batched', 'activation')
NOISE_MODES = ('random', 'const', 'none')
D_ARCHITECTURES = ('resnet', 'orig', 'skip')

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)    # bias_act's def_gain for 'lrelu': keeps the second moment at 1
_DN = ('NHWC', 'HWIO', 'NHWC')


# -- FIR resampling (torch_utils/ops/upfirdn2d.py) ---------------------------------------------
def setup_filter(f=(1, 3, 3, 1), normalize: bool = True, flip_filter: bool = False,
                 gain: float = 1.0, separable: Optional[bool] = None) -> np.ndarray:
  """The FIR filter as upfirdn2d.setup_filter builds it, as float32 numpy.

  A 1-D filter of fewer than 8 taps becomes its outer product (a 2-D filter); longer ones stay
  separable (1-D). Normalised to sum 1, so that a constant image keeps its value.
  """
  f = np.asarray(1.0 if f is None else f, np.float32)
  if f.ndim == 0:
    f = f[None]
  if f.ndim not in (1, 2) or f.size == 0:
    raise UserError(f'resample_filter={f.tolist()!r}: give 1-D taps (e.g. (1, 3, 3, 1)) or a '
                    '2-D filter.')
  if separable is None:
    separable = f.ndim == 1 and f.size >= 8
  if f.ndim == 1 and not separable:
    f = np.outer(f, f)
  if f.ndim != (1 if separable else 2):
    raise UserError('resample_filter: a 2-D filter cannot be separable: give 1-D taps.')
  if normalize:
    f = f / f.sum()
  if flip_filter:
    f = np.flip(f, tuple(range(f.ndim)))
  return (f * np.float32(gain ** (f.ndim / 2))).astype(np.float32)


def _pair(v) -> tuple[int, int]:
  return (int(v), int(v)) if np.ndim(v) == 0 else (int(v[0]), int(v[1]))


def _pad4(pad) -> tuple[int, int, int, int]:
  """int, (px, py) or (x0, x1, y0, y1), as the reference's _parse_padding."""
  if np.ndim(pad) == 0:
    return (int(pad),) * 4
  if len(pad) == 2:
    return int(pad[0]), int(pad[0]), int(pad[1]), int(pad[1])
  x0, x1, y0, y1 = pad
  return int(x0), int(x1), int(y0), int(y1)


def _filter_size(f) -> tuple[int, int]:
  """(fw, fh) of a setup_filter filter; (1, 1) for None."""
  if f is None:
    return 1, 1
  f = np.asarray(f)
  return f.shape[-1], f.shape[0]


def _fir_1d(x, taps, axis, stride):
  """Correlation along one axis with 1-D taps (VALID), strided: a sum of shifted slices.

  Why slices and not a depthwise conv (feature_group_count=C): on XLA's CPU backend (jax
  0.10.2) the depthwise conv's forward+backward took ~7x as long (734 against 96 ms for the
  4x4 filter at 33x33x128, batch 32).
  """
  length = (x.shape[axis] - len(taps)) // stride + 1
  out = None
  for k, tap in enumerate(taps):
    # float(): a weakly typed scalar keeps x's dtype (bfloat16 stays bfloat16).
    term = lax.slice_in_dim(x, k, k + (length - 1) * stride + 1, stride, axis) * float(tap)
    out = term if out is None else out + term
  return out


def _fir_2d(x_BxHxWxC, f_FHxFW, strides):
  """Correlation of every channel with the 2-D filter (VALID), strided; in two 1-D passes
  where the filter is an outer product (setup_filter's are), else tap by tap."""
  f = np.asarray(f_FHxFW, np.float64)
  col, row = f.sum(axis=1), f.sum(axis=0)
  if f.sum() != 0 and np.allclose(np.outer(col, row / f.sum()), f, rtol=1e-6, atol=0):
    taps_y = col.astype(np.float32)
    taps_x = (row / f.sum()).astype(np.float32)
    return _fir_1d(_fir_1d(x_BxHxWxC, taps_x, 2, strides[1]), taps_y, 1, strides[0])
  rows = [_fir_1d(lax.slice_in_dim(x_BxHxWxC, i, x_BxHxWxC.shape[1] - f.shape[0] + 1 + i,
                                   axis=1), f[i].astype(np.float32), 2, strides[1])
          for i in range(f.shape[0])]
  return lax.slice_in_dim(sum(rows[1:], rows[0]), 0, None, strides[0], axis=1)


def upfirdn2d(x_BxHxWxC, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
  """Upsample, pad, FIR-filter and downsample every channel (the reference's _upfirdn2d_ref).

  1. insert up-1 zeros after each pixel; 2. pad by pad = (x0, x1, y0, y1) zeros, negative
  values crop; 3. convolve (true convolution: f flipped) with f * gain^(f.ndim / 2), keeping
  only the outputs whose footprint lies inside; 4. keep every down-th pixel. `f` is a
  setup_filter result (numpy, static): 2-D, or 1-D taps applied along x then y. `up`, `down`:
  an int or (x, y).
  """
  f = np.ones((1, 1), np.float32) if f is None else np.asarray(f, np.float32)
  if f.ndim not in (1, 2):
    raise UserError(f'upfirdn2d: the filter must be 1-D or 2-D, got shape {f.shape}.')
  upx, upy = _pair(up)
  downx, downy = _pair(down)
  px0, px1, py0, py1 = _pad4(pad)
  x = x_BxHxWxC
  # Zero insertion and padding in one lax.pad: interior padding inserts the zeros between
  # pixels; the reference also puts up-1 zeros after the last one, hence hi + up - 1. Its
  # negative padding crops after the insertion, as lax.pad's does (and unlike a conv's
  # negative padding, which XLA's CPU backend gets wrong; see genlab/models/layers.py).
  x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (py0, py1 + upy - 1, upy - 1),
                                          (px0, px1 + upx - 1, upx - 1), (0, 0, 0)])
  f = np.flip(f * np.float32(gain ** (f.ndim / 2)), tuple(range(f.ndim)))
  if f.ndim == 2:
    return _fir_2d(x, f, (downy, downx))
  return _fir_1d(_fir_1d(x, f, 2, downx), f, 1, downy)


def upsample2d(x_BxHxWxC, f, up=2):
  """upfirdn2d.upsample2d: (H, W) -> (up H, up W), gain up^2 so that a constant is kept."""
  fw, fh = _filter_size(f)
  return upfirdn2d(x_BxHxWxC, f, up=up, pad=((fw + up - 1) // 2, (fw - up) // 2,
                                             (fh + up - 1) // 2, (fh - up) // 2),
                   gain=up * up)


def downsample2d(x_BxHxWxC, f, down=2):
  """upfirdn2d.downsample2d: (H, W) -> (H / down, W / down)."""
  fw, fh = _filter_size(f)
  return upfirdn2d(x_BxHxWxC, f, down=down, pad=((fw - down + 1) // 2, (fw - down) // 2,
                                                 (fh - down + 1) // 2, (fh - down) // 2))


# -- Convolution with resampling (torch_utils/ops/conv2d_resample.py) --------------------------
def _conv(x, w, stride=1, pad=0, groups=1):
  return lax.conv_general_dilated(x, w, (stride, stride), [(pad, pad), (pad, pad)],
                                  dimension_numbers=_DN, feature_group_count=groups)


def conv2d_resample(x_BxHxWxC, w_KxKxIxO, f=None, up=1, down=1, padding=0, groups=1,
                    transposed: Optional[bool] = None):
  """Correlation with w (lax's convention; the reference's flip_weight=True) of the image
  upsampled by `up` and downsampled by `down` with the FIR filter f, `padding` being with
  respect to the upsampled image: the reference's conv2d_resample.

  down > 1 runs as the reference's fast path: the FIR filter, then a stride-`down` conv (for
  1x1 kernels: FIR down-sampling, then the conv). up > 1 with a k x k kernel has two exact
  forms, the same linear map (both shift-invariant on the up-sampled grid, composing the same
  two kernels):
    transposed=True   the reference's fast path: a stride-`up` transposed conv (lax's conv
                      over the input dilated by `up`), then the FIR filter with gain up^2;
    transposed=False  the reference's generic path: FIR up-sampling (zero insertion, filter,
                      gain up^2), then a VALID conv on the up-sampled image.
  None picks the generic path on the CPU and the transposed one elsewhere: XLA's CPU backend
  runs a transposed conv's backward pass on a slow path (6.7 s against 0.8 s for the VALID
  conv at 16x16x128 -> 32x32x128, batch 32, jax 0.10.2, 2 cores), although the VALID conv
  does up^2 times the multiply-adds. For 1x1 kernels the conv runs first, then the FIR
  up-sampling, as the reference does. w is HWIO with I the input channels per group.
  """
  if int(padding) != padding or padding < 0:
    raise UserError(f'conv2d_resample: padding={padding!r}: give an integer >= 0.')
  x = x_BxHxWxC
  kh, kw = w_KxKxIxO.shape[:2]
  fw, fh = _filter_size(f)
  px0 = px1 = py0 = py1 = int(padding)
  if up > 1:
    px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
    py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
  if down > 1:
    px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
    py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
  pads = (px0, px1, py0, py1)
  if kh == kw == 1 and down > 1 and up == 1:
    return _conv(upfirdn2d(x, f, down=down, pad=pads), w_KxKxIxO, groups=groups)
  if kh == kw == 1 and up > 1 and down == 1:
    return upfirdn2d(_conv(x, w_KxKxIxO, groups=groups), f, up=up, pad=pads, gain=up ** 2)
  if down > 1 and up == 1:
    return _conv(upfirdn2d(x, f, pad=pads), w_KxKxIxO, stride=down, groups=groups)
  if up == 1 and down == 1:
    return _conv(x, w_KxKxIxO, pad=px0, groups=groups)
  if transposed is None:
    transposed = jax.default_backend() != 'cpu'
  if transposed:
    px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
    # The reference moves the padding both sides share into the transposed conv (cropping
    # its output by pt); cropping by slicing here keeps negative padding out of the conv.
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    x = lax.conv_general_dilated(x, w_KxKxIxO, (1, 1), [(kh - 1, kh - 1), (kw - 1, kw - 1)],
                                 lhs_dilation=(up, up), dimension_numbers=_DN,
                                 feature_group_count=groups)
    x = x[:, pyt:x.shape[1] - pyt, pxt:x.shape[2] - pxt]
    x = upfirdn2d(x, f, pad=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up ** 2)
  else:
    x = upfirdn2d(x, f, up=up, pad=pads, gain=up ** 2)
    x = _conv(x, w_KxKxIxO, groups=groups)
  return upfirdn2d(x, f, down=down) if down > 1 else x


def modulated_conv2d(x_BxHxWxC, weight_KxKxIxO, styles_BxI, demodulate=True, up=1, down=1,
                     padding=0, resample_filter=None, impl='grouped'):
  """Modulated convolution with weight demodulation (Karras et al. 2020, Sec. 2.2, Eq. 1-3):

    w'_bijk = s_bi w_ijk,  w''_bijk = w'_bijk / sqrt(sum_{i,k} w'_bijk^2 + eps),  eps = 1e-8

  then a correlation of sample b with its own w'' (or w' when demodulate=False), resampled as
  conv2d_resample does. impl picks one of MODCONV_IMPLS (the same function). Styles and
  weights are combined in float32; the convolution runs in x's dtype. For a dtype other
  than float32 the weight and styles are first divided by their maxima, as the reference
  does in float16: demodulation cancels it, and it keeps w' in range.
  """
  impl = one_of(impl, MODCONV_IMPLS, 'model.modconv_impl')
  x = x_BxHxWxC
  batch, height, width, in_channels = x.shape
  kh, kw, _, out_channels = weight_KxKxIxO.shape
  if styles_BxI.shape != (batch, in_channels) or weight_KxKxIxO.shape[2] != in_channels:
    raise UserError(f'modulated_conv2d: x {x.shape}, weight {weight_KxKxIxO.shape} and styles '
                    f'{styles_BxI.shape} do not fit: styles must be (B, I) for x (B, H, W, I).')
  dtype = x.dtype
  weight = weight_KxKxIxO.astype(jnp.float32)
  styles = styles_BxI.astype(jnp.float32)
  if dtype != jnp.float32 and demodulate:
    weight = weight * (1 / np.sqrt(in_channels * kh * kw)
                       / jnp.max(jnp.abs(weight), axis=(0, 1, 2), keepdims=True))
    styles = styles / jnp.max(jnp.abs(styles), axis=1, keepdims=True)
  w_BxKxKxIxO = weight[None] * styles[:, None, None, :, None]
  resample = dict(f=resample_filter, up=up, down=down, padding=padding)
  if demodulate:
    dcoefs_BxO = lax.rsqrt(jnp.sum(jnp.square(w_BxKxKxIxO), axis=(1, 2, 3)) + 1e-8)
  if impl == 'activation':
    x = x * styles.astype(dtype)[:, None, None, :]
    x = conv2d_resample(x, weight.astype(dtype), **resample)
    return x * dcoefs_BxO.astype(dtype)[:, None, None, :] if demodulate else x
  if demodulate:
    w_BxKxKxIxO = w_BxKxKxIxO * dcoefs_BxO[:, None, None, None, :]
  w_BxKxKxIxO = w_BxKxKxIxO.astype(dtype)
  if impl == 'batched':
    return jax.vmap(lambda xi, wi: conv2d_resample(xi[None], wi, **resample)[0])(x, w_BxKxKxIxO)
  x_1xHxWxBI = x.transpose(1, 2, 0, 3).reshape(1, height, width, batch * in_channels)
  w_KxKxIxBO = w_BxKxKxIxO.transpose(1, 2, 3, 0, 4).reshape(kh, kw, in_channels,
                                                            batch * out_channels)
  y = conv2d_resample(x_1xHxWxBI, w_KxKxIxBO, groups=batch, **resample)
  return y.reshape(*y.shape[1:3], batch, out_channels).transpose(2, 0, 1, 3)


def minibatch_stddev(x_BxHxWxC, group_size, num_channels):
  """Minibatch standard deviation (Karras et al. 2018, Sec. 3; the reference's
  MinibatchStdLayer): appends num_channels feature maps, each the mean over its C /
  num_channels channels and all pixels of the per-pixel standard deviation over a group.

  Groups are G = min(group_size, B) samples strided by B / G (samples b, b + B/G, ...), as the
  reference's reshape to (G, B/G, ...) makes them; group_size None means the whole batch.
  """
  x = x_BxHxWxC
  b, h, w, c = x.shape
  g = b if group_size is None else min(int(group_size), b)
  f = int(num_channels)
  if g < 1:
    raise UserError(f'minibatch_stddev: group_size={group_size!r}: give an integer >= 1 (or '
                    'None for the whole batch).')
  if b % g:
    raise UserError(f'minibatch_stddev: batch size {b} is not divisible by the group size {g}: '
                    'use a batch that is a multiple of mbstd_group_size (or change it).')
  if f < 1 or c % f:
    raise UserError(f'minibatch_stddev: {c} channels cannot be split into num_channels={f} '
                    'groups: give a mbstd_num_channels that divides the channel count.')
  y = x.astype(jnp.float32).reshape(g, b // g, h, w, f, c // f)
  y = jnp.sqrt(jnp.mean(jnp.square(y - jnp.mean(y, axis=0)), axis=0) + 1e-8)
  y_NxF = jnp.mean(y, axis=(1, 2, 4))
  y = jnp.tile(y_NxF[:, None, None, :], (g, h, w, 1)).astype(x.dtype)
  return jnp.concatenate([x, y], axis=-1)


# -- Layers (training/networks.py) -------------------------------------------------------------
def _bias_act(x, b=None, act='linear', gain=1.0, clamp=None):
  """bias_act: add the bias, activate, scale by gain, clamp to +-clamp."""
  if b is not None:
    x = x + b.astype(x.dtype)
  if act == 'lrelu':
    x = jnp.where(x >= 0, x, x * LRELU_SLOPE)
  if gain != 1:
    x = x * gain
  if clamp is not None:
    x = jnp.clip(x, -clamp, clamp)
  return x


def _normal(stddev):
  return nn.initializers.normal(stddev=stddev)


class FullyConnected(nn.Module):
  """FullyConnectedLayer: y = act(x W lr_mul / sqrt(fan_in) + b lr_mul), W stored N(0, 1) /
  lr_mul and b stored at bias_init (equalized learning rate, Karras et al. 2018, Sec. 4.1:
  Adam's step on the stored values is lr_mul times smaller in the used ones)."""
  features: int
  activation: str = 'linear'
  lr_multiplier: float = 1.0
  bias_init: float = 0.0

  @nn.compact
  def __call__(self, x_BxI):
    fan_in = x_BxI.shape[-1]
    kernel = self.param('kernel', _normal(1 / self.lr_multiplier), (fan_in, self.features))
    bias = self.param('bias', nn.initializers.constant(self.bias_init), (self.features,))
    x = x_BxI.astype(jnp.float32) @ (kernel * (self.lr_multiplier / np.sqrt(fan_in)))
    return _bias_act(x, bias * self.lr_multiplier, self.activation,
                     LRELU_GAIN if self.activation == 'lrelu' else 1.0)


class Conv2dLayer(nn.Module):
  """Conv2dLayer: equalized-lr conv (weight gain 1 / sqrt(I k k)), 'same' padding k // 2,
  optional FIR down-sampling (filter, then stride-2 conv), bias, activation, clamp."""
  features: int
  kernel_size: int
  activation: str = 'lrelu'
  down: int = 1
  use_bias: bool = True
  resample_filter: Any = None      # a setup_filter result
  conv_clamp: Optional[float] = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC, gain=1.0):
    k, c = self.kernel_size, x_BxHxWxC.shape[-1]
    kernel = self.param('kernel', _normal(1.0), (k, k, c, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,)) if self.use_bias else None
    w = (kernel * (1 / np.sqrt(c * k * k))).astype(self.dtype)
    x = conv2d_resample(x_BxHxWxC.astype(self.dtype), w, self.resample_filter,
                        down=self.down, padding=k // 2)
    act_gain = (LRELU_GAIN if self.activation == 'lrelu' else 1.0) * gain
    clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
    return _bias_act(x, bias, self.activation, act_gain, clamp)


def const_noise(name: str, size: int) -> jax.Array:
  """The 'const' noise map of the synthesis layer `name`, (1, size, size, 1), N(0, 1).

  Why a fixed draw and not the reference's stored noise_const buffer: it needs no variable
  collection besides 'params', so 'const' works with any checkpoint. The key is the CRC-32 of
  the layer's name, so the map is the same in every process and every network.
  """
  key = jax.random.PRNGKey(zlib.crc32(name.encode()))
  return jax.random.normal(key, (1, size, size, 1), jnp.float32)


def noise_shapes(resolution: int) -> dict[str, tuple[int, int]]:
  """{layer name: (H, W)} of every noise input of SynthesisNetwork(resolution=...): the keys
  the `noise` override takes, in the network's order ('b4.conv1', 'b8.conv0', 'b8.conv1'...)."""
  shapes = {}
  for res in _block_resolutions(resolution):
    for i in ((1,) if res == 4 else (0, 1)):
      shapes[f'b{res}.conv{i}'] = (res, res)
  return shapes


class SynthesisLayer(nn.Module):
  """SynthesisLayer: affine style (bias_init 1), modulated 3x3 conv with demodulation (up=2:
  FIR up-sampling), per-pixel noise times a learned strength (initialised 0; Karras et al.
  2019, Sec. 3.2), bias, lrelu * sqrt(2), clamp.

  The reference's up-sampling layers convolve (flip_weight=False) where the others correlate;
  the kernel is flipped here for them, so that it is stored as the reference stores it.
  """
  features: int
  resolution: int
  noise_name: str
  up: int = 1
  resample_filter: Any = None
  conv_clamp: Optional[float] = None
  modconv_impl: str = 'grouped'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC, w_BxW, noise_mode='none', noise=None, gain=1.0):
    """noise_mode 'const' or 'none' ('random' maps are drawn by SynthesisNetwork and come in
    as `noise`); `noise`, when given, is the unit noise map whatever the mode."""
    c = x_BxHxWxC.shape[-1]
    styles_BxI = FullyConnected(c, bias_init=1.0, name='affine')(w_BxW)
    kernel = self.param('kernel', _normal(1.0), (3, 3, c, self.features))
    strength = self.param('noise_strength', nn.initializers.zeros, ())
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    if self.up > 1:
      kernel = kernel[::-1, ::-1]
    x = modulated_conv2d(x_BxHxWxC.astype(self.dtype), kernel, styles_BxI, up=self.up,
                         padding=1, resample_filter=self.resample_filter,
                         impl=self.modconv_impl)
    if noise is None and noise_mode == 'const':
      noise = const_noise(self.noise_name, self.resolution)
    if noise is not None:
      x = x + (noise * strength).astype(x.dtype)
    clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
    return _bias_act(x, bias, 'lrelu', LRELU_GAIN * gain, clamp)


class ToRGB(nn.Module):
  """ToRGBLayer: affine style times 1 / sqrt(I), modulated 1x1 conv WITHOUT demodulation,
  bias, clamp; no activation."""
  channels: int
  conv_clamp: Optional[float] = None
  modconv_impl: str = 'grouped'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC, w_BxW):
    c = x_BxHxWxC.shape[-1]
    styles_BxI = FullyConnected(c, bias_init=1.0, name='affine')(w_BxW) * (1 / np.sqrt(c))
    kernel = self.param('kernel', _normal(1.0), (1, 1, c, self.channels))
    bias = self.param('bias', nn.initializers.zeros, (self.channels,))
    x = modulated_conv2d(x_BxHxWxC.astype(self.dtype), kernel, styles_BxI, demodulate=False,
                         impl=self.modconv_impl)
    return _bias_act(x, bias, clamp=self.conv_clamp)


def _check_resolution(resolution, key='model.resolution') -> int:
  if (isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer))
      or resolution < 4 or resolution & (resolution - 1)):
    raise UserError(f'config.{key}={resolution!r}: StyleGAN2 needs a power of two >= 4 '
                    '(4, 8, 16, 32, ...): resize the data or pick another resolution.')
  return int(resolution)


def _block_resolutions(resolution) -> list[int]:
  return [2 ** i for i in range(2, int(np.log2(_check_resolution(resolution))) + 1)]


def _channels(res, channel_base, channel_max) -> int:
  return min(channel_base // res, channel_max)


def _bf16_resolution(resolution, num_bf16_res) -> int:
  """The lowest resolution that computes in bfloat16 (the reference's fp16_resolution)."""
  if isinstance(num_bf16_res, bool) or not isinstance(num_bf16_res, (int, np.integer)) \
      or num_bf16_res < 0:
    raise UserError(f'config.model.num_bf16_res={num_bf16_res!r}: give an integer >= 0 '
                    '(0: float32 everywhere).')
  return max(2 ** (int(np.log2(resolution)) + 1 - num_bf16_res), 8)


# -- Generator ---------------------------------------------------------------------------------
class MappingNetwork(nn.Module):
  """z -> w (Karras et al. 2019, Sec. 2): normalise z to unit second moment, num_layers dense
  layers (lrelu, width w_dim, learning rate times lr_multiplier), w repeated num_ws times."""
  z_dim: int
  w_dim: int
  num_ws: int
  num_layers: int = 8
  lr_multiplier: float = 0.01

  @nn.compact
  def __call__(self, z_BxZ):
    if z_BxZ.ndim != 2 or z_BxZ.shape[1] != self.z_dim:
      raise UserError(f'MappingNetwork: z has shape {z_BxZ.shape}: give (batch, {self.z_dim}).')
    if self.num_layers < 1:
      raise UserError(f'config.model.mapping_layers={self.num_layers}: give at least 1.')
    z = z_BxZ.astype(jnp.float32)
    x = z * lax.rsqrt(jnp.mean(jnp.square(z), axis=1, keepdims=True) + 1e-8)
    for i in range(self.num_layers):
      x = FullyConnected(self.w_dim, 'lrelu', self.lr_multiplier, name=f'fc{i}')(x)
    return jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))


class SynthesisBlock(nn.Module):
  """One resolution of the skip generator (Karras et al. 2020, Fig. 7b): [const 4x4 | conv0
  up 2x], conv1, and toRGB added to the FIR-upsampled image of the block below."""
  features: int
  resolution: int
  channels: int
  resample_filter: Any
  conv_clamp: Optional[float]
  modconv_impl: str
  dtype: Any

  @nn.compact
  def __call__(self, x, img, ws_BxNxW, noise_mode, noise):
    name = lambda i: f'b{self.resolution}.conv{i}'
    layer = lambda i, up: SynthesisLayer(
        self.features, self.resolution, name(i), up, self.resample_filter, self.conv_clamp,
        self.modconv_impl, self.dtype, name=f'conv{i}')
    ws = iter(range(ws_BxNxW.shape[1]))
    if x is None:
      const = self.param('const', _normal(1.0), (self.resolution, self.resolution,
                                                 self.features))
      x = jnp.broadcast_to(const.astype(self.dtype), (ws_BxNxW.shape[0], *const.shape))
    else:
      x = layer(0, 2)(x.astype(self.dtype), ws_BxNxW[:, next(ws)], noise_mode, noise.get(name(0)))
    x = layer(1, 1)(x, ws_BxNxW[:, next(ws)], noise_mode, noise.get(name(1)))
    if img is not None:
      img = upsample2d(img, self.resample_filter)
    y = ToRGB(self.channels, self.conv_clamp, self.modconv_impl, self.dtype, name='torgb')(
        x, ws_BxNxW[:, next(ws)]).astype(jnp.float32)
    return x, (img + y if img is not None else y)


class SynthesisNetwork(nn.Module):
  """w -> image (Karras et al. 2020, config F): the skip generator, 4x4 to resolution.

  Channels at resolution r: min(channel_base // r, channel_max). ws (B, num_ws, w_dim): block r
  takes ws[i], ws[i+1] (conv0, conv1) and its toRGB ws[i+2], which is the next block's first
  (num_ws = 2 log2(resolution) - 2). The top num_bf16_res resolutions (from 8 up) compute in
  bfloat16, the image sums stay float32; conv_clamp clamps every conv's output (the reference
  uses 256 with mixed precision).

  noise_mode: 'random' draws N(0, 1) maps from the rng stream 'noise'; 'const' uses the fixed
  maps of const_noise; 'none' adds nothing. `noise` {layer name: (B or 1, H, W, 1)} replaces
  the unit noise map of those layers whatever the mode (still times the learned strength), as
  projection needs (Karras et al. 2020, Sec. 5); noise_shapes(resolution) lists the names.

  batch_split k: the blocks run on gcd(B, k) independent slices of the rows (rows i, i + k,
  ...; genlab/batch_split.py), joined back in order: the same function, whose slices XLA's CPU
  runtime runs at once (one batched backward there runs mostly on one core).
  """
  w_dim: int
  resolution: int
  channels: int
  channel_base: int = 32768
  channel_max: int = 512
  resample_filter: tuple = (1, 3, 3, 1)
  modconv_impl: str = 'grouped'
  num_bf16_res: int = 0
  conv_clamp: Optional[float] = None
  batch_split: int = 1

  @property
  def num_ws(self) -> int:
    return 2 * len(_block_resolutions(self.resolution))

  def noise_shapes(self) -> dict[str, tuple[int, int]]:
    return noise_shapes(self.resolution)

  @nn.compact
  def __call__(self, ws_BxNxW, noise_mode='random', noise: Optional[Mapping] = None):
    one_of(self.modconv_impl, MODCONV_IMPLS, 'model.modconv_impl')
    if noise_mode not in NOISE_MODES:
      raise UserError(f'noise_mode={noise_mode!r} is not known: use one of {list(NOISE_MODES)}.')
    if ws_BxNxW.ndim != 3 or ws_BxNxW.shape[1:] != (self.num_ws, self.w_dim):
      raise UserError(f'SynthesisNetwork: ws has shape {ws_BxNxW.shape}: give (batch, '
                      f'{self.num_ws}, {self.w_dim}) (num_ws, w_dim).')
    noise = dict(noise or {})
    shapes = noise_shapes(self.resolution)
    for name, value in noise.items():
      if name not in shapes or tuple(value.shape[1:]) != (*shapes[name], 1) \
          or value.shape[0] not in (1, ws_BxNxW.shape[0]):
        raise UserError(f'noise[{name!r}] of shape {getattr(value, "shape", None)}: give a '
                        f'(B or 1, H, W, 1) map for a layer of noise_shapes(): {shapes}.')
    batch = ws_BxNxW.shape[0]
    if noise_mode == 'random':
      # Drawn here for the whole batch, not per layer and slice, so that the maps (and the
      # images) do not depend on batch_split.
      if self.has_rng('noise'):
        noise = {name: noise[name] if name in noise else
                 jax.random.normal(self.make_rng('noise'), (batch, *hw, 1))
                 for name, hw in shapes.items()}
      elif not self.is_initializing():  # at init the strengths are 0: no maps needed
        raise UserError("noise_mode='random' draws from the rng stream 'noise': pass "
                        "rngs={'noise': key} to apply, or use noise_mode='const' or 'none'.")
      noise_mode = 'none'   # the maps, if any, are in `noise` now
    f = setup_filter(self.resample_filter)
    bf16_res = _bf16_resolution(self.resolution, self.num_bf16_res)
    resolutions = _block_resolutions(self.resolution)
    blocks = [SynthesisBlock(_channels(res, self.channel_base, self.channel_max), res,
                             self.channels, f, self.conv_clamp, self.modconv_impl,
                             jnp.bfloat16 if res >= bf16_res else jnp.float32, name=f'b{res}')
              for res in resolutions]

    def synthesize(ws, noise):
      x = img = None
      w_idx = 0
      for res, block in zip(resolutions, blocks):
        num_conv = 1 if res == 4 else 2
        x, img = block(x, img, ws[:, w_idx:w_idx + num_conv + 1], noise_mode, noise)
        w_idx += num_conv
      return img

    ws_BxNxW = ws_BxNxW.astype(jnp.float32)
    k = math.gcd(batch, self.batch_split)
    if k == 1:
      return synthesize(ws_BxNxW, noise)
    shared = {name: v for name, v in noise.items() if v.shape[0] == 1}
    per_row = {name: v for name, v in noise.items() if v.shape[0] != 1}
    return batch_split.join_rows([
        synthesize(batch_split.slice_rows(ws_BxNxW, k, i),
                   {**shared, **batch_split.slice_rows(per_row, k, i)}) for i in range(k)])


class Generator(nn.Module):
  """The StyleGAN2 generator: MappingNetwork then SynthesisNetwork (unconditional).

  apply(v, z, method='map') -> ws (B, num_ws, w_dim) (truncation and the w average are the
  caller's); apply(v, ws, noise_mode, noise, method='synthesize') -> image (B, H, W, C),
  float32, unbounded (about [-1, 1] once trained); apply(v, z) does both. 'random' noise takes
  rngs={'noise': key}; init needs only 'params' (the noise strengths start at 0).
  """
  z_dim: int = 512
  w_dim: int = 512
  resolution: int = 32
  channels: int = 3
  channel_base: int = 32768
  channel_max: int = 512
  mapping_layers: int = 8
  mapping_lr_multiplier: float = 0.01
  resample_filter: tuple = (1, 3, 3, 1)
  modconv_impl: str = 'grouped'
  num_bf16_res: int = 0
  conv_clamp: Optional[float] = None
  batch_split: int = 1

  @property
  def num_ws(self) -> int:
    return 2 * len(_block_resolutions(self.resolution))

  def noise_shapes(self) -> dict[str, tuple[int, int]]:
    return noise_shapes(self.resolution)

  def setup(self):
    self.synthesis = SynthesisNetwork(
        self.w_dim, self.resolution, self.channels, self.channel_base, self.channel_max,
        tuple(self.resample_filter), self.modconv_impl, self.num_bf16_res, self.conv_clamp,
        self.batch_split)
    self.mapping = MappingNetwork(self.z_dim, self.w_dim, self.num_ws, self.mapping_layers,
                                  self.mapping_lr_multiplier)

  def map(self, z_BxZ):
    return self.mapping(z_BxZ)

  def synthesize(self, ws_BxNxW, noise_mode='random', noise=None):
    return self.synthesis(ws_BxNxW, noise_mode, noise)

  def __call__(self, z_BxZ, noise_mode='random'):
    return self.synthesize(self.map(z_BxZ), noise_mode)


# -- Discriminator -----------------------------------------------------------------------------
class DiscriminatorBlock(nn.Module):
  """DiscriminatorBlock at one resolution: [fromRGB 1x1], conv0 3x3, conv1 3x3 with FIR down
  2x; 'resnet' adds a 1x1 FIR-down skip without bias, both paths times sqrt(0.5) (Karras et
  al. 2020, Fig. 7c); 'skip' adds fromRGB of the FIR-downsampled image at every block."""
  tmp_features: int
  out_features: int
  architecture: str
  resample_filter: Any
  conv_clamp: Optional[float]
  dtype: Any

  @nn.compact
  def __call__(self, x, img):
    conv = lambda name, features, k, **kw: Conv2dLayer(
        features, k, dtype=self.dtype, name=name, **{
            'resample_filter': self.resample_filter, 'conv_clamp': self.conv_clamp, **kw})
    if x is not None:
      x = x.astype(self.dtype)
    if x is None or self.architecture == 'skip':
      y = conv('fromrgb', self.tmp_features, 1)(img.astype(self.dtype))
      x = x + y if x is not None else y
      img = downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None
    if self.architecture == 'resnet':
      y = conv('skip', self.out_features, 1, activation='linear', down=2, use_bias=False,
               conv_clamp=None)(x, gain=np.sqrt(0.5))
      x = conv('conv0', self.tmp_features, 3)(x)
      x = conv('conv1', self.out_features, 3, down=2)(x, gain=np.sqrt(0.5))
      return y + x, img
    x = conv('conv0', self.tmp_features, 3)(x)
    return conv('conv1', self.out_features, 3, down=2)(x), img


class Discriminator(nn.Module):
  """The StyleGAN2 discriminator (unconditional): image (B, H, W, C) -> logits (B,).

  Blocks from resolution down to 8 (channels min(channel_base // r, channel_max); fromRGB at
  the top only, except 'skip'), then at 4x4, in float32: minibatch stddev, conv 3x3, dense,
  dense to one logit. architecture: 'resnet' (config F), 'orig' (the reference's cifar
  config) or 'skip'. The top num_bf16_res resolutions (from 8 up) compute in bfloat16.
  The batch must be divisible by min(mbstd_group_size, batch). batch_split k: the blocks run
  on gcd(B, k) slices of the rows, as SynthesisNetwork's, joined for the 4x4 epilogue, whose
  minibatch stddev pools across rows.
  """
  resolution: int = 32
  channels: int = 3
  channel_base: int = 32768
  channel_max: int = 512
  mbstd_group_size: Optional[int] = 4
  mbstd_num_channels: int = 1
  architecture: str = 'resnet'
  resample_filter: tuple = (1, 3, 3, 1)
  num_bf16_res: int = 0
  conv_clamp: Optional[float] = None
  batch_split: int = 1

  @nn.compact
  def __call__(self, img_BxHxWxC):
    arch = one_of(self.architecture, D_ARCHITECTURES, 'model.architecture')
    res_top = _check_resolution(self.resolution)
    if img_BxHxWxC.ndim != 4 or img_BxHxWxC.shape[1:] != (res_top, res_top, self.channels):
      raise UserError(f'Discriminator: images of shape {img_BxHxWxC.shape}: give (batch, '
                      f'{res_top}, {res_top}, {self.channels}).')
    f = setup_filter(self.resample_filter)
    bf16_res = _bf16_resolution(res_top, self.num_bf16_res)
    ch = lambda res: _channels(res, self.channel_base, self.channel_max)
    blocks = [DiscriminatorBlock(ch(res), ch(res // 2), arch, f, self.conv_clamp,
                                 jnp.bfloat16 if res >= bf16_res else jnp.float32,
                                 name=f'b{res}')
              for res in _block_resolutions(res_top)[:0:-1]]

    def features(img):
      x = None
      for block in blocks:
        x, img = block(x, img)
      return x, img

    img = img_BxHxWxC.astype(jnp.float32)
    k = math.gcd(img.shape[0], self.batch_split)
    x, img = features(img) if k == 1 else batch_split.join_rows(
        [features(batch_split.slice_rows(img, k, i)) for i in range(k)])
    # Joined for the epilogue: minibatch stddev pools over groups of rows across the slices.
    return DiscriminatorEpilogue(ch(4), arch, self.mbstd_group_size, self.mbstd_num_channels,
                                 self.conv_clamp, name='b4')(x, img)


class DiscriminatorEpilogue(nn.Module):
  """DiscriminatorEpilogue at 4x4 (float32): [fromRGB for 'skip'], minibatch stddev, conv 3x3,
  dense (lrelu), dense to one logit. The dense layer flattens in the reference's (C, H, W)
  order, so its kernel is the reference's weight transposed."""
  features: int
  architecture: str
  mbstd_group_size: Optional[int]
  mbstd_num_channels: int
  conv_clamp: Optional[float]

  @nn.compact
  def __call__(self, x, img):
    if x is None:  # resolution 4: no block above
      x = Conv2dLayer(self.features, 1, conv_clamp=self.conv_clamp, name='fromrgb')(img)
    else:
      x = x.astype(jnp.float32)
      if self.architecture == 'skip':
        x = x + Conv2dLayer(self.features, 1, name='fromrgb')(img)
    if self.mbstd_num_channels > 0:
      x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_channels)
    x = Conv2dLayer(self.features, 3, conv_clamp=self.conv_clamp, name='conv')(x)
    x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
    x = FullyConnected(self.features, 'lrelu', name='fc')(x)
    return FullyConnected(1, name='out')(x)[:, 0]
