"""Exact equivalents of strided (transposed) convolutions as stride-1 convolutions.

Why: XLA's CPU backend (jax 0.10.2) computes the kernel gradient of `nn.ConvTranspose`
(an lhs-dilated convolution) on a slow generic path: at DCGAN-MNIST's 7x7x128 -> 14x14x64
layer, batch 64, it took ~400 ms against ~10 ms for the forward pass, and made a DCGAN
training step ~4x slower than PyTorch on the same CPU. Rewritten as stride-1 convolutions,
which XLA CPU runs through its fast kernels, the same layer's forward+backward took ~30 ms:

  SubPixelConvTranspose  one stride-1 conv per output phase (or one fused conv to s*s*F
                         channels), then depth-to-space (sub-pixel convolution, Shi et al.
                         2016, "Real-Time Single Image and Video Super-Resolution Using an
                         Efficient Sub-Pixel CNN", Sec. 2.2).
  SpaceToDepthConv       pad, space-to-depth, then a stride-1 conv (the same identity read
                         backwards). Exact, but on XLA CPU measured ~1.6x SLOWER than nn.Conv
                         at the DCGAN discriminator's shapes: a strided conv's gradients
                         are not on the slow path there, so models should keep impl='xla'
                         for convs unless a measurement on their backend says otherwise.

Each layer is a drop-in replacement for its flax layer: the same constructor arguments that
matter, the same parameter names, shapes, dtypes and default initialisers, and the same
outputs for the same parameters (up to float32 summation order). The kernel is stored in the
flax layout and rearranged on every call with differentiable slice/pad/gather/reshape ops,
so checkpoints are interchangeable with the flax layers, gradients reach the stored
'kernel', and `nn.SpectralNorm` (which normalises the stored 'kernel') behaves identically.

`conv_transpose(impl, ...)` and `conv(impl, ...)` pick an implementation by config, and
`backend_impl` resolves a config's 'auto' by the backend that runs it.
The functional cores `subpixel_conv_transpose` and `space_to_depth_conv` take channels-last
inputs (N, *spatial, C) and flax-layout kernels (*k, C, F).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from flax.linen.dtypes import promote_dtype

from genlab.errors import UserError, one_of

Padding = str | int | Sequence[int | tuple[int, int]]

CONV_TRANSPOSE_IMPLS = ('xla', 'subpixel')
CONV_IMPLS = ('xla', 'space_to_depth', 'matmul')
FUSE_PHASES_BELOW = 8  # SubPixelConvTranspose's default: one fused conv when features < this

default_kernel_init = nn.linear.default_kernel_init  # lecun_normal, as flax's conv layers


def _as_tuple(value: int | Sequence[int] | None, rank: int, default: int = 1) -> tuple[int, ...]:
  """Broadcasts an int (or None -> default) to `rank` ints, as flax's maybe_broadcast does."""
  if value is None:
    value = default
  if isinstance(value, int):
    return (value,) * rank
  return tuple(int(v) for v in value)


def _explicit_pairs(padding: Padding, rank: int, what: str) -> str | list[tuple[int, int]]:
  """flax's canonicalize_padding, with a UserError instead of a ValueError."""
  try:
    return nn.linear.canonicalize_padding(padding, rank)
  except ValueError:
    raise UserError(f'{what}: padding={padding!r} is not valid: use \'SAME\', \'VALID\', an int '
                    f'or {rank} (low, high) pairs.') from None


def _dimension_numbers(rank: int) -> lax.ConvDimensionNumbers:
  """Channels-last input/output, (*k, C, F) kernel: the layout of every flax conv."""
  spatial = tuple(range(1, rank + 1))
  return lax.ConvDimensionNumbers(lhs_spec=(0, rank + 1) + spatial,
                                  rhs_spec=(rank + 1, rank) + tuple(range(rank)),
                                  out_spec=(0, rank + 1) + spatial)


def _conv_stride1(x: jax.Array, kernel: jax.Array, pads: Sequence[tuple[int, int]],
                  precision: Any, preferred_element_type: Any) -> jax.Array:
  """Stride-1 lax convolution; negative padding (cropping) is done by lax.pad first.

  Why: XLA's CPU backend returns wrong values for convolutions with negative padding
  (measured with jax 0.10.2: lax.conv_general_dilated(x, w, (1,), [(-1, 1)]) differs from the
  same conv of x[:, 1:] with padding (0, 1)), while lax.pad crops correctly.
  """
  rank = x.ndim - 2
  if any(p < 0 for pair in pads for p in pair):
    crop = [(0, 0, 0)] + [(min(lo, 0), min(hi, 0), 0) for lo, hi in pads] + [(0, 0, 0)]
    x = lax.pad(x, jnp.zeros((), x.dtype), crop)
    pads = [(max(lo, 0), max(hi, 0)) for lo, hi in pads]
  return lax.conv_general_dilated(x, kernel, (1,) * rank, pads,
                                  dimension_numbers=_dimension_numbers(rank),
                                  precision=precision,
                                  preferred_element_type=preferred_element_type)


def matmul_conv(x_BxHxWxC: jax.Array, kernel_KxKxCxF: jax.Array, strides: Sequence[int],
                pads: Sequence[tuple[int, int]], precision: Any = None) -> jax.Array:
  """A 2-D convolution (NHWC, HWIO, explicit padding) as one matmul over its patches (im2col).

  The patches are kh*kw strided slices of the padded input, so the forward pass is one GEMM
  and the backward pass two GEMMs plus slice transposes (pads). Measured in the DCGAN step on
  2 CPU cores: as the discriminator's strided convs it takes the step from 496 to 359 ms at
  batch 256 (69 -> 77 ms at batch 64); for the sub-pixel phase convs it was slower than XLA's
  conv, so they keep lax. Equal to lax.conv_general_dilated up to float summation order.
  Negative padding crops (lax.pad handles it correctly).
  """
  x = x_BxHxWxC
  b, _, _, c = x.shape
  kh, kw, _, f = kernel_KxKxCxF.shape
  sh, sw = strides
  x = lax.pad(x, jnp.zeros((), x.dtype),
              [(0, 0, 0), (pads[0][0], pads[0][1], 0), (pads[1][0], pads[1][1], 0), (0, 0, 0)])
  ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
  cols = [lax.slice(x, (0, i, j, 0), (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c),
                    (1, sh, sw, 1)) for i in range(kh) for j in range(kw)]
  patches = jnp.concatenate(cols, axis=-1).reshape(b * ho * wo, kh * kw * c)
  out = jnp.matmul(patches, kernel_KxKxCxF.reshape(kh * kw * c, f).astype(patches.dtype),
                   precision=precision)
  return out.reshape(b, ho, wo, f)


class MatmulConv(nn.Module):
  """Drop-in for 2-D `nn.Conv` (same 'kernel'/'bias' parameters and initialisers) computed by
  `matmul_conv`; string padding 'SAME'/'VALID' or explicit pairs."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: Padding = 'SAME'
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Any = nn.linear.default_kernel_init
  bias_init: Any = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x_BxHxWxC):
    kh, kw = self.kernel_size
    strides = _as_tuple(self.strides, 2)
    kernel = self.param('kernel', self.kernel_init, (kh, kw, x_BxHxWxC.shape[-1], self.features),
                        self.param_dtype)
    bias = self.param('bias', self.bias_init, (self.features,), self.param_dtype) \
        if self.use_bias else None
    x, kernel, bias = nn.dtypes.promote_dtype(x_BxHxWxC, kernel, bias, dtype=self.dtype)
    pads = _explicit_pairs(self.padding, 2, 'MatmulConv')
    if isinstance(pads, str):
      pads = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, pads)
    y = matmul_conv(x, kernel, strides, pads)
    return y + bias if bias is not None else y


def transpose_padding(k: int, s: int, padding: str | tuple[int, int]) -> tuple[int, int]:
  """Padding (before, after) of the stride-1 dilated input in `lax.conv_transpose`.

  Mirrors jax._src.lax.convolution._conv_transpose_padding (jax 0.10): 'SAME' pads
  k + s - 2 in total, k - 1 before if s > k - 1 else ceil((k + s - 2) / 2); 'VALID' pads
  k + s - 2 + max(k - s, 0) in total, k - 1 before; explicit pairs are used as they are
  (flax passes integer padding to lax.conv_transpose unchanged, i.e. as the padding of the
  dilated input, not of the forward conv).
  """
  if padding == 'SAME':
    pad_len = k + s - 2
    pad_a = k - 1 if s > k - 1 else math.ceil(pad_len / 2)
  elif padding == 'VALID':
    pad_len = k + s - 2 + max(k - s, 0)
    pad_a = k - 1
  else:
    pad_a, pad_b = padding
    return int(pad_a), int(pad_b)
  return pad_a, pad_len - pad_a


def _depth_to_space(z: jax.Array, strides: tuple[int, ...]) -> jax.Array:
  """(N, *M, prod(s)*F) with channels ordered (r_1..r_n, F) -> (N, *(M*s), F).

  Output position s_i*m_i + r_i along each spatial axis i takes channel block (r_1..r_n).
  """
  rank = len(strides)
  spatial = z.shape[1:1 + rank]
  features = z.shape[-1] // math.prod(strides)
  z = z.reshape(z.shape[0], *spatial, *strides, features)
  interleaved = [a for i in range(rank) for a in (1 + i, 1 + rank + i)]
  z = z.transpose(0, *interleaved, 2 * rank + 1)
  return z.reshape(z.shape[0], *(m * s for m, s in zip(spatial, strides)), features)


def _space_to_depth(x: jax.Array, strides: tuple[int, ...]) -> jax.Array:
  """(N, *(Q*s), C) -> (N, *Q, prod(s)*C) with channels ordered (r_1..r_n, C).

  The inverse of _depth_to_space: input position s_i*q_i + r_i goes to channel block r.
  """
  rank = len(strides)
  blocks = tuple(n // s for n, s in zip(x.shape[1:1 + rank], strides))
  x = x.reshape(x.shape[0], *(a for q, s in zip(blocks, strides) for a in (q, s)), x.shape[-1])
  x = x.transpose(0, *(1 + 2 * i for i in range(rank)), *(2 + 2 * i for i in range(rank)),
                  2 * rank + 1)
  return x.reshape(x.shape[0], *blocks, -1)


def _subpixel_taps(k: int, s: int, pad_a: int) -> tuple[int, np.ndarray]:
  """Offsets and tap table of one spatial axis of the sub-pixel rewrite.

  The transposed conv (Dumoulin & Visin 2016, "A guide to convolution arithmetic", Sec. 4)
  dilates x by s, pads pad_a before and correlates with W (lax's convention, no flip):
    y[o] = sum_t W[t] * xd[o + t - pad_a],   xd[s*i] = x[i], 0 elsewhere.
  With o = s*m + r only taps with (r + t - pad_a) % s == 0 hit a non-zero, at
  i = m + d, d = (r + t - pad_a) // s, so
    y[s*m + r] = sum_d x[m + d] * W[s*d - r + pad_a]   (taps outside [0, k) are zero),
  one stride-1 correlation per phase r. Returns d_min = ceil(-pad_a / s) and
  table[j, r] = s*(j + d_min) - r + pad_a, with k (the index of an appended zero tap) where
  that tap does not exist.
  """
  d_min = -(pad_a // s)
  d_max = (s - 1 + k - 1 - pad_a) // s
  j = np.arange(d_max - d_min + 1)[:, None]
  r = np.arange(s)[None, :]
  taps = s * (j + d_min) - r + pad_a
  return d_min, np.where((taps >= 0) & (taps < k), taps, k)


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                            padding: str | Sequence[tuple[int, int]] = 'SAME',
                            precision: Any = None, preferred_element_type: Any = None,
                            fuse_phases: bool | None = None) -> jax.Array:
  """`lax.conv_transpose(x, kernel, strides, padding)` (transpose_kernel=False) without dilation.

  x: (N, *spatial, C) channels-last; kernel: (*k, C, F). Each output phase r (output
  positions s*m + r) is a stride-1 correlation of x with the taps W[s*d - r + pad_a]
  (the identity in `_subpixel_taps`); the phases are interleaved by depth-to-space (Shi et
  al. 2016, Eq. 4 "periodic shuffling").
  fuse_phases=True computes all phases as ONE stride-1 conv with prod(s)*F output channels
  over the union of the phases' offsets, missing taps being zeros (Shi et al.'s form);
  False runs one smaller conv per phase, which does no multiply-by-zero work (k=4, s=2:
  4 taps per phase instead of 9). None picks fused for F < 8: on XLA CPU (jax 0.10.2,
  k4 s2, batch 64, fwd+bwd) per-phase was ~2x faster at F >= 16 and fused ~2x faster at
  F = 1, where per-phase convs have too few output channels to vectorise well.
  """
  rank = x.ndim - 2
  ks = kernel.shape[:rank]
  strides = _as_tuple(tuple(strides), rank)
  if isinstance(padding, str):
    pads = [transpose_padding(k, s, padding) for k, s in zip(ks, strides)]
  else:
    pads = [transpose_padding(k, s, tuple(p)) for k, s, p in zip(ks, strides, padding)]
  if all(s == 1 for s in strides):
    return _conv_stride1(x, kernel, pads, precision, preferred_element_type)
  out_sizes, phase_sizes = [], []
  for n, k, s, (pa, pb) in zip(x.shape[1:-1], ks, strides, pads):
    length = (n - 1) * s + 1 + pa + pb - k + 1       # lax.conv_transpose's output size
    if length <= 0:
      raise UserError(f'conv_transpose: padding {padding!r} leaves no output for input size '
                      f'{n}, kernel {k}, stride {s}: use less negative padding.')
    out_sizes.append(length)
    phase_sizes.append(-(-length // s))              # phases computed, then cropped
  c_in, features = kernel.shape[-2:]
  if fuse_phases is None:
    fuse_phases = features < FUSE_PHASES_BELOW
  if fuse_phases:
    conv_pads, blocks = [], []
    for axis, (n, k, s, (pa, _), m) in enumerate(zip(x.shape[1:-1], ks, strides, pads,
                                                     phase_sizes)):
      d_min, taps = _subpixel_taps(k, s, pa)
      # z[m] = sum_j x[m + d_min + j] K[j]: x is read from d_min to m - 1 + d_max.
      conv_pads.append((-d_min, (m - 1 + d_min + taps.shape[0] - 1) - (n - 1)))
      # Rearrange the kernel along this axis: (k) -> (D*s) via a zero tap at index k.
      kernel = jnp.take(jnp.pad(kernel, [(0, int(a == axis)) for a in range(kernel.ndim)]),
                        taps.reshape(-1), axis=axis)
      blocks.append(taps.shape)
    kernel = kernel.reshape(*(a for b in blocks for a in b), c_in, features)
    kernel = kernel.transpose(*(2 * i for i in range(rank)), 2 * rank,
                              *(2 * i + 1 for i in range(rank)), 2 * rank + 1)
    kernel = kernel.reshape(*(d for d, _ in blocks), c_in, math.prod(strides) * features)
    z = _conv_stride1(x, kernel, conv_pads, precision, preferred_element_type)
  else:
    phases = []
    for r in np.ndindex(*strides):
      # Along each axis phase r reads offsets d_lo..d_hi with taps t = s*d - r + pad_a in
      # [0, k): a stride-s slice of the kernel, in increasing t.
      taps, conv_pads = [], []
      for n, k, s, (pa, _), m, ri in zip(x.shape[1:-1], ks, strides, pads, phase_sizes, r):
        d_lo, d_hi = -((pa - ri) // s), (k - 1 + ri - pa) // s
        taps.append(slice(s * d_lo - ri + pa, s * d_hi - ri + pa + 1, s))
        conv_pads.append((-d_lo, m - 1 + d_hi - (n - 1)))
      if any(t.start >= t.stop for t in taps):      # k < s: this phase gets no tap
        phases.append(jnp.zeros((x.shape[0], *phase_sizes, features),
                                preferred_element_type or jnp.result_type(x, kernel)))
      else:
        phases.append(_conv_stride1(x, kernel[tuple(taps)], conv_pads, precision,
                                    preferred_element_type))
    z = jnp.concatenate(phases, axis=-1)             # channels ordered (r_1..r_n, F)
  y = _depth_to_space(z, strides)
  return y[(slice(None), *(slice(0, n) for n in out_sizes), slice(None))]


def space_to_depth_conv(x: jax.Array, kernel: jax.Array, strides: Sequence[int],
                        padding: str | Sequence[tuple[int, int]] = 'SAME',
                        precision: Any = None,
                        preferred_element_type: Any = None) -> jax.Array:
  """`lax.conv_general_dilated(x, kernel, strides, padding)` as a stride-1 conv.

  x: (N, *spatial, C) channels-last; kernel: (*k, C, F). With t = s*q + r,
    y[m] = sum_t xp[s*m + t] W[t] = sum_{q, r} xs[m + q, r] W[s*q + r],
  where xs[i, r] = xp[s*i + r] is the space-to-depth of the padded input xp (the sub-pixel
  identity of Shi et al. 2016, Sec. 2.2, read backwards). The kernel is zero-padded to a
  multiple of s and reshaped to (ceil(k/s), s*C, F) per axis.
  """
  rank = x.ndim - 2
  ks = kernel.shape[:rank]
  strides = _as_tuple(tuple(strides), rank)
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(x.shape[1:-1], ks, strides, padding)
  else:
    pads = [tuple(p) for p in padding]
  if all(s == 1 for s in strides):
    return _conv_stride1(x, kernel, pads, precision, preferred_element_type)
  x_pads, k_pads, blocks = [(0, 0, 0)], [], []
  for n, k, s, (lo, hi) in zip(x.shape[1:-1], ks, strides, pads):
    m = (n + lo + hi - k) // s + 1                   # conv output size
    if m <= 0:
      raise UserError(f'conv: input size {n} with padding {padding!r} is smaller than the '
                      f'kernel {k}: use a smaller kernel or more padding.')
    q = -(-k // s)
    # xs needs m + q - 1 blocks of s; extra zeros only meet zero kernel taps, and positions
    # past that are never read, so they are cropped (negative high padding).
    x_pads.append((lo, s * (m + q - 1) - n - lo, 0))
    k_pads.append((0, s * q - k))
    blocks.append(q)
  x_pads.append((0, 0, 0))
  xs = _space_to_depth(lax.pad(x, jnp.zeros((), x.dtype), x_pads), strides)
  c_in, features = kernel.shape[-2:]
  kernel = jnp.pad(kernel, k_pads + [(0, 0), (0, 0)])
  kernel = kernel.reshape(*(a for q, s in zip(blocks, strides) for a in (q, s)), c_in, features)
  kernel = kernel.transpose(*(2 * i for i in range(rank)), *(2 * i + 1 for i in range(rank)),
                            2 * rank, 2 * rank + 1)
  kernel = kernel.reshape(*blocks, math.prod(strides) * c_in, features)
  return _conv_stride1(xs, kernel, [(0, 0)] * rank, precision, preferred_element_type)


def _flatten_batch(inputs: jax.Array, rank: int) -> tuple[jax.Array, tuple[int, ...] | None]:
  """Merges all leading batch axes into one (or adds one), as flax's conv layers do."""
  num_batch = inputs.ndim - (rank + 1)
  if num_batch == 1:
    return inputs, None
  return inputs.reshape((-1,) + inputs.shape[num_batch:]), inputs.shape[:num_batch]


class SubPixelConvTranspose(nn.Module):
  """Drop-in for `nn.ConvTranspose` computed as stride-1 conv + depth-to-space.

  Same fields, parameters ('kernel' (*k, C, F), or (*k, F, C) with transpose_kernel, and
  'bias' (F,)), initialisers and outputs as `nn.ConvTranspose`; padding 'SAME', 'VALID' or
  explicit ints/pairs (transposed-conv padding, as flax passes them to lax.conv_transpose).
  Not supported: 'CIRCULAR' padding and kernel_dilation > 1 (use impl='xla').
  """
  features: int
  kernel_size: int | Sequence[int]
  strides: Sequence[int] | None = None
  padding: Padding = 'SAME'
  kernel_dilation: Sequence[int] | None = None
  use_bias: bool = True
  mask: jax.Array | None = None
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  transpose_kernel: bool = False
  promote_dtype: Callable = promote_dtype
  preferred_element_type: Any = None
  fuse_phases: bool | None = None  # speed only, see subpixel_conv_transpose; None: auto

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel_size = ((self.kernel_size,) if isinstance(self.kernel_size, int)
                   else tuple(self.kernel_size))
    rank = len(kernel_size)
    if any(d != 1 for d in _as_tuple(self.kernel_dilation, rank)):
      raise UserError(f'SubPixelConvTranspose: kernel_dilation={self.kernel_dilation} is not '
                      'supported: use impl=\'xla\' (nn.ConvTranspose).')
    padding = _explicit_pairs(self.padding, rank, 'SubPixelConvTranspose')
    if isinstance(padding, str) and padding not in ('SAME', 'VALID'):
      raise UserError(f'SubPixelConvTranspose: padding={padding!r} is not supported: use '
                      '\'SAME\', \'VALID\', explicit pairs, or impl=\'xla\'.')
    inputs, batch_shape = _flatten_batch(inputs, rank)
    in_features = inputs.shape[-1]
    kernel_shape = kernel_size + ((self.features, in_features) if self.transpose_kernel
                                  else (in_features, self.features))
    if self.mask is not None and self.mask.shape != kernel_shape:
      raise ValueError('Mask needs to have the same shape as weights. '
                       f'Shapes are: {self.mask.shape}, {kernel_shape}')
    kernel = self.param('kernel', self.kernel_init, kernel_shape, self.param_dtype)
    if self.mask is not None:
      kernel *= self.mask
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    if self.transpose_kernel:  # lax.conv_transpose: flip spatial axes, swap C and F
      kernel = jnp.flip(kernel, tuple(range(rank))).swapaxes(-1, -2)
    y = subpixel_conv_transpose(inputs, kernel, _as_tuple(self.strides, rank), padding,
                                self.precision, self.preferred_element_type, self.fuse_phases)
    if bias is not None:
      y += bias.reshape((1,) * (y.ndim - 1) + (-1,))
    if batch_shape is not None:
      y = y.reshape(batch_shape + y.shape[1:])
    return y


class SpaceToDepthConv(nn.Module):
  """Drop-in for `nn.Conv` computed as pad + space-to-depth + stride-1 conv.

  Same fields, parameters ('kernel' (*k, C, F), 'bias' (F,)), initialisers and outputs as
  `nn.Conv`; padding 'SAME', 'VALID', explicit ints/pairs, 'CIRCULAR' or 'REFLECT'. With all
  strides 1 it is a plain lax convolution. Not supported: input or kernel dilation,
  feature_group_count > 1 and unshared weights (use impl='xla').
  """
  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  padding: Padding = 'SAME'
  input_dilation: int | Sequence[int] = 1
  kernel_dilation: int | Sequence[int] = 1
  feature_group_count: int = 1
  use_bias: bool = True
  mask: jax.Array | None = None
  dtype: Any = None
  param_dtype: Any = jnp.float32
  precision: Any = None
  kernel_init: Callable = default_kernel_init
  bias_init: Callable = nn.initializers.zeros_init()
  promote_dtype: Callable = promote_dtype
  preferred_element_type: Any = None

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    kernel_size = ((self.kernel_size,) if isinstance(self.kernel_size, int)
                   else tuple(self.kernel_size))
    rank = len(kernel_size)
    if (any(d != 1 for d in _as_tuple(self.input_dilation, rank))
        or any(d != 1 for d in _as_tuple(self.kernel_dilation, rank))
        or self.feature_group_count != 1):
      raise UserError('SpaceToDepthConv: input/kernel dilation and feature_group_count > 1 are '
                      'not supported: use impl=\'xla\' (nn.Conv).')
    padding = _explicit_pairs(self.padding, rank, 'SpaceToDepthConv')
    inputs, batch_shape = _flatten_batch(inputs, rank)
    if padding in ('CIRCULAR', 'REFLECT'):  # as nn.Conv: pad by (k-1)//2, k//2, then VALID
      inputs = jnp.pad(inputs, [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel_size]
                       + [(0, 0)], mode={'CIRCULAR': 'wrap', 'REFLECT': 'reflect'}[padding])
      padding = 'VALID'
    elif isinstance(padding, str) and padding not in ('SAME', 'VALID'):
      raise UserError(f'SpaceToDepthConv: padding={padding!r} is not supported: use '
                      '\'SAME\', \'VALID\', \'CIRCULAR\', \'REFLECT\', pairs or impl=\'xla\'.')
    kernel_shape = kernel_size + (inputs.shape[-1], self.features)
    if self.mask is not None and self.mask.shape != kernel_shape:
      raise ValueError('Mask needs to have the same shape as weights. '
                       f'Shapes are: {self.mask.shape}, {kernel_shape}')
    kernel = self.param('kernel', self.kernel_init, kernel_shape, self.param_dtype)
    if self.mask is not None:
      kernel *= self.mask
    bias = (self.param('bias', self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    y = space_to_depth_conv(inputs, kernel, _as_tuple(self.strides, rank), padding,
                            self.precision, self.preferred_element_type)
    if bias is not None:
      y += bias.reshape((1,) * (y.ndim - 1) + (-1,))
    if batch_shape is not None:
      y = y.reshape(batch_shape + y.shape[1:])
    return y


def backend_impl(impl: str, impls: Sequence[str], cpu_impl: str, config_key: str) -> str:
  """`impl`, or for 'auto' the form for the backend that will run it: `cpu_impl` on XLA's
  CPU backend, whose own kernels for these layers are slow (the module docstring), and 'xla'
  on GPU and TPU, where cuDNN's or XLA's own convolutions are what a user expects."""
  impl = one_of(impl, ('auto', *impls), config_key)
  if impl != 'auto':
    return impl
  return cpu_impl if jax.default_backend() == 'cpu' else 'xla'


def conv_transpose(impl: str = 'xla', *, config_key: str = 'model.conv_transpose_impl',
                   **kwargs) -> nn.Module:
  """`nn.ConvTranspose(**kwargs)` ('xla') or `SubPixelConvTranspose(**kwargs)` ('subpixel').

  `config_key` names the config entry in the error for an unknown impl.
  """
  impl = one_of(impl, CONV_TRANSPOSE_IMPLS, config_key)
  return (nn.ConvTranspose if impl == 'xla' else SubPixelConvTranspose)(**kwargs)


def conv(impl: str = 'xla', *, config_key: str = 'model.conv_impl', **kwargs) -> nn.Module:
  """`nn.Conv(**kwargs)` ('xla'), `SpaceToDepthConv` ('space_to_depth') or `MatmulConv`
  ('matmul')."""
  impl = one_of(impl, CONV_IMPLS, config_key)
  return {'xla': nn.Conv, 'space_to_depth': SpaceToDepthConv, 'matmul': MatmulConv}[impl](
      **kwargs)
