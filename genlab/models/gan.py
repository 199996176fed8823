"""Generators and discriminators: Goodfellow et al. 2014 (MLP, maxout) and DCGAN.

Pure Flax modules; losses, optimizers and the alternation live in genlab/methods/gan.py.
Every module takes `labels_B` (int32) when `num_classes > 0` (the class-conditional GAN of
Mirza & Osindero 2014: a one-hot label is concatenated to the generator's noise and to the
discriminator's input). Generators return images in the range of their output activation
(sigmoid: [0, 1]; tanh: [-1, 1]); discriminators return one logit per example, shape (B,).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genlab.errors import UserError, one_of

# 'fast': the generator's stride-2 transposed convolutions as sub-pixel convolutions (the same
# function and parameters; XLA's CPU backward of nn.ConvTranspose is ~10x slower). The
# discriminator's strided convolutions: 'xla' (nn.Conv), 'matmul' (im2col + one GEMM, faster
# on the CPU at batch 256) or 'space_to_depth' (measured slower; benchmarks/conv_cpu.py).
CONV_IMPLS = ('xla', 'fast')
D_CONV_IMPLS = ('xla', 'space_to_depth', 'matmul')
D_NORMS = ('batch', 'layer', 'none')


def _one_hot(labels_B, num_classes, dtype):
  return jax.nn.one_hot(labels_B, num_classes, dtype=dtype)


def _with_labels(h_BxD, labels_B, num_classes):
  """Concatenates one-hot labels to a flat input (Mirza & Osindero 2014, Sec. 4.1)."""
  if not num_classes:
    return h_BxD
  if labels_B is None:
    raise ValueError('A class-conditional network needs labels.')
  return jnp.concatenate([h_BxD, _one_hot(labels_B, num_classes, h_BxD.dtype)], axis=-1)


def _maybe_sn(layer, spectral_norm: bool):
  """Spectral normalisation of the layer's kernel (Miyato et al. 2018, Eq. 8)."""
  return nn.SpectralNorm(layer) if spectral_norm else layer


def _call(layer, x, spectral_norm: bool, train: bool):
  return layer(x, update_stats=train) if spectral_norm else layer(x)


# -- Goodfellow et al. 2014 ---------------------------------------------------------------------
class MLPGenerator(nn.Module):
  """z -> ReLU hidden layers -> sigmoid image (Goodfellow et al. 2014, MNIST model).

  `output_bias`: the output layer's initial bias (flattened logits), e.g. the logits of the
  data's pixel marginals as the paper's code starts it; zeros when None.
  """
  image_shape: Sequence[int]
  hidden_dims: Sequence[int] = (1200, 1200)
  num_classes: int = 0
  dtype: Any = jnp.float32
  output_bias: Optional[tuple] = None
  init_range: Optional[float] = None  # kernels ~ U(-r, r) as pylearn2's irange; flax's if None

  @nn.compact
  def __call__(self, z_BxZ, labels_B=None, train: bool = True):
    h = _with_labels(z_BxZ.astype(self.dtype), labels_B, self.num_classes)
    init = _kernel_init(self.init_range)
    for width in self.hidden_dims:
      h = nn.relu(nn.Dense(width, dtype=self.dtype, kernel_init=init)(h))
    bias_init = nn.initializers.zeros
    if self.output_bias is not None:
      bias_init = lambda *_: jnp.asarray(self.output_bias, jnp.float32)
    logits = nn.Dense(math.prod(self.image_shape), dtype=self.dtype, kernel_init=init,
                      bias_init=bias_init)(h)
    return nn.sigmoid(logits.astype(jnp.float32)).reshape(-1, *self.image_shape)


def _kernel_init(init_range):
  if init_range is None:
    return nn.linear.default_kernel_init
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
      key, shape, dtype, -init_range, init_range)


class Maxout(nn.Module):
  """h_i = max_j (x W_ij + b_ij), j over `pieces` linear pieces (Goodfellow et al. 2013)."""
  units: int
  pieces: int
  dtype: Any = jnp.float32
  init_range: Optional[float] = None
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x_BxD, train: bool = True):
    dense = nn.Dense(self.units * self.pieces, dtype=self.dtype,
                     kernel_init=_kernel_init(self.init_range))
    y = _call(_maybe_sn(dense, self.spectral_norm), x_BxD, self.spectral_norm, train)
    return jnp.max(y.reshape(*y.shape[:-1], self.units, self.pieces), axis=-1)


class MaxoutDiscriminator(nn.Module):
  """Maxout layers with dropout -> one logit (Goodfellow et al. 2014, MNIST model).

  Dropout rates follow the paper's code: 0.2 on the input, 0.5 on the hidden layers.
  """
  hidden_dims: Sequence[int] = (240, 240)
  pieces: int = 5
  input_dropout: float = 0.2
  hidden_dropout: float = 0.5
  num_classes: int = 0
  spectral_norm: bool = False
  dtype: Any = jnp.float32
  init_range: Optional[float] = None

  @nn.compact
  def __call__(self, x_BxHxWxC, labels_B=None, train: bool = True):
    init = _kernel_init(self.init_range)
    h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1).astype(self.dtype)
    h = nn.Dropout(self.input_dropout, deterministic=not train)(h)
    h = _with_labels(h, labels_B, self.num_classes)
    for width in self.hidden_dims:
      h = Maxout(width, self.pieces, self.dtype, self.init_range, self.spectral_norm)(h, train)
      h = nn.Dropout(self.hidden_dropout, deterministic=not train)(h)
    out = _call(_maybe_sn(nn.Dense(1, dtype=self.dtype, kernel_init=init), self.spectral_norm),
                h, self.spectral_norm, train)
    return out[:, 0].astype(jnp.float32)


# -- DCGAN (Radford et al. 2016) ---------------------------------------------------------------
def dcgan_plan(image_shape) -> tuple[int, int]:
  """(base, n) with H = W = base * 2^n, base 4 (32x32, 64x64) or 7 (28x28)."""
  h, w = int(image_shape[0]), int(image_shape[1])
  for base in (4, 7):
    n = round(math.log2(max(h, 1) / base))
    if h == w and n >= 1 and base * 2 ** n == h:
      return base, n
  raise UserError(f'DCGAN needs square images of side 4*2^n or 7*2^n (28, 32, 64, ...), got '
                  f'{h}x{w}: set config.data.image_size (e.g. 64) or model.kind=mlp.')


def _conv_transpose(impl, **kw):
  if one_of(impl, CONV_IMPLS, 'model.conv_impl') == 'xla':
    return nn.ConvTranspose(**kw)
  from genlab.models import layers  # pylint: disable=g-import-not-at-top
  return layers.conv_transpose('subpixel', **kw)


def _conv(impl, **kw):
  if one_of(impl, D_CONV_IMPLS, 'model.d_conv_impl') == 'xla':
    return nn.Conv(**kw)
  from genlab.models import layers  # pylint: disable=g-import-not-at-top
  return layers.conv(impl, config_key='model.d_conv_impl', **kw)


class DCGANGenerator(nn.Module):
  """Project-and-reshape, then stride-2 4x4 transposed convs with BN + ReLU, tanh output.

  Radford et al. 2016, Sec. 3 and Fig. 1 (sizes of the PyTorch DCGAN example): for 64x64,
  z -> 4x4x8f -> 8x8x4f -> 16x16x2f -> 32x32xf -> 64x64xC; for 28x28, z -> 7x7x2f -> 14x14xf
  -> 28x28xC. BatchNorm uses the statistics of the batch it is given, in training and when
  sampling, as the reference implementations do.
  """
  image_shape: Sequence[int]
  features: int = 64
  num_classes: int = 0
  conv_impl: str = 'fast'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z_BxZ, labels_B=None, train: bool = True):
    base, n = dcgan_plan(self.image_shape)
    bn = lambda: nn.BatchNorm(use_running_average=False, momentum=0.9, dtype=self.dtype)
    h = _with_labels(z_BxZ.astype(self.dtype), labels_B, self.num_classes)
    width = self.features * 2 ** (n - 1)
    h = nn.Dense(base * base * width, use_bias=False, dtype=self.dtype)(h)
    h = nn.relu(bn()(h.reshape(-1, base, base, width)))
    for i in range(n - 1):
      h = _conv_transpose(self.conv_impl, features=self.features * 2 ** (n - 2 - i),
                          kernel_size=(4, 4), strides=(2, 2), padding='SAME', use_bias=False,
                          dtype=self.dtype, name=f'ConvTranspose_{i}')(h)
      h = nn.relu(bn()(h))
    h = _conv_transpose(self.conv_impl, features=int(self.image_shape[-1]), kernel_size=(4, 4),
                        strides=(2, 2), padding='SAME', dtype=self.dtype,
                        name=f'ConvTranspose_{n - 1}')(h)
    return jnp.tanh(h.astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
  """Stride-2 4x4 convs with leaky ReLU (0.2), normalisation after all but the first, a
  linear logit (Radford et al. 2016, Sec. 3).

  `norm='batch'` is DCGAN's; WGAN-GP's critic must not use batch norm (the penalty is per
  example; Gulrajani et al. 2017, Sec. 4), so it takes 'layer' or 'none'.
  """
  image_shape: Sequence[int]
  features: int = 64
  num_classes: int = 0
  norm: str = 'batch'
  spectral_norm: bool = False
  conv_impl: str = 'xla'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC, labels_B=None, train: bool = True):
    _, n = dcgan_plan(self.image_shape)
    one_of(self.norm, D_NORMS, 'model.d_norm')
    h = x_BxHxWxC.astype(self.dtype)
    if self.num_classes:  # Labels as constant feature maps (Mirza & Osindero 2014).
      onehot = _one_hot(labels_B, self.num_classes, h.dtype)[:, None, None, :]
      h = jnp.concatenate([h, jnp.broadcast_to(onehot, (*h.shape[:3], self.num_classes))], -1)
    for i in range(n):
      normed = i > 0 and self.norm != 'none'
      # Named as flax names nn.Conv, so every conv_impl reads the same checkpoint.
      conv = _conv(self.conv_impl, features=self.features * 2 ** i, kernel_size=(4, 4),
                   strides=(2, 2), padding='SAME', use_bias=not normed, dtype=self.dtype,
                   name=None if self.spectral_norm else f'Conv_{i}')
      h = _call(_maybe_sn(conv, self.spectral_norm), h, self.spectral_norm, train)
      if normed and self.norm == 'batch':
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(h)
      elif normed:
        h = nn.LayerNorm(dtype=self.dtype)(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape(h.shape[0], -1)
    out = _call(_maybe_sn(nn.Dense(1, dtype=self.dtype), self.spectral_norm), h,
                self.spectral_norm, train)
    return out[:, 0].astype(jnp.float32)


def make_networks(kind: str, image_shape, *, num_classes: int = 0,
                  g_hidden_dims=(1200, 1200), d_hidden_dims=(240, 240), maxout_pieces=5,
                  d_dropout=(0.2, 0.5), g_output_bias=None, init_ranges=(None, None),
                  features: int = 64, d_norm: str = 'batch', spectral_norm: bool = False,
                  conv_impl: str = 'fast', d_conv_impl: str = 'xla', dtype=jnp.float32):
  """(generator, discriminator, output range) for model.kind 'mlp' (Goodfellow) or 'dcgan'."""
  kind = one_of(kind, ('mlp', 'dcgan'), 'model.kind')
  if kind == 'mlp':
    return (MLPGenerator(tuple(image_shape), tuple(g_hidden_dims), num_classes, dtype,
                         g_output_bias, init_ranges[0]),
            MaxoutDiscriminator(tuple(d_hidden_dims), maxout_pieces, *d_dropout,
                                num_classes=num_classes, spectral_norm=spectral_norm,
                                dtype=dtype, init_range=init_ranges[1]),
            'sigmoid')
  dcgan_plan(image_shape)
  return (DCGANGenerator(tuple(image_shape), features, num_classes, conv_impl, dtype),
          DCGANDiscriminator(tuple(image_shape), features, num_classes, d_norm, spectral_norm,
                             d_conv_impl, dtype),
          'tanh')
