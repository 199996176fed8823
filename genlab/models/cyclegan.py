"""The networks of CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", Sec. 4 and Appendix 7.2).

Built as the official PyTorch code builds them (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py: ResnetGenerator, ResnetBlock, NLayerDiscriminator, init_weights), with
its CycleGAN defaults: instance norm without affine parameters and without running
statistics (`affine=False, track_running_stats=False`, eps 1e-5), conv biases on
(`use_bias=True` with instance norm), no dropout, reflection padding in the generator, and
every conv kernel initialised N(0, 0.02) with zero biases (`init_type='normal',
init_gain=0.02`). Pure Flax modules; the losses (LSGAN, cycle, identity), the image pool and
the optimisers live in genlab/methods/cyclegan.py.

Both networks take and return channels-last images, (B, H, W, C), in [-1, 1].

Layouts differ from PyTorch's only where flax's do: kernels are (kh, kw, C_in, C_out); the
transposed convs are lax.conv_transpose's correlation over the dilated input, so a PyTorch
ConvTranspose2d weight W (C_in, C_out, kh, kw) is the kernel flip(W, (2, 3)).transpose(2, 3,
0, 1) here (tests/test_models_cyclegan.py checks this against PyTorch where it is installed).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from genlab.errors import UserError, one_of

# 'fast': the generator's stride-2 transposed convolutions as sub-pixel convolutions
# (layers.SubPixelConvTranspose: the same function and parameters). XLA's CPU backward of
# nn.ConvTranspose is slow (genlab/models/layers.py); see the measurements below.
CONV_TRANSPOSE_IMPLS = ('xla', 'fast')
# The stride-2 convolutions (generator downsampling, discriminator): nn.Conv ('xla'), im2col +
# one GEMM ('matmul') or space-to-depth + stride-1 conv ('space_to_depth'); all exact.
CONV_IMPLS = ('xla', 'space_to_depth', 'matmul')

# init_weights(init_type='normal', init_gain=0.02): N(0, 0.02) kernels, zero biases.
weight_init = nn.initializers.normal(stddev=0.02)
EPS = 1e-5  # nn.InstanceNorm2d's default


def _instance_norm(dtype, name=None):
  """InstanceNorm2d(affine=False, track_running_stats=False): each sample and channel is
  normalised by its own spatial mean and (biased) variance, in training and at test time.

  Two-pass variance (use_fast_variance=False), as PyTorch computes it: flax's default
  E[x^2] - E[x]^2 cancels in float32 when a channel's mean is large against its spread (a
  conv bias over N(0, 0.02) kernels), and differed from PyTorch by up to ~6e-4 relative there.
  """
  return nn.InstanceNorm(epsilon=EPS, use_bias=False, use_scale=False, dtype=dtype,
                         use_fast_variance=False, name=name)


def _reflect(x_BxHxWxC, pad: int):
  """nn.ReflectionPad2d(pad): mirror without repeating the edge pixel (numpy's 'reflect')."""
  return jnp.pad(x_BxHxWxC, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='reflect')


def _conv(impl, name, **kw):
  """A conv named `name` whatever the impl, so every impl reads the same checkpoint."""
  kw = dict(kernel_init=weight_init, bias_init=nn.initializers.zeros, name=name, **kw)
  if one_of(impl, CONV_IMPLS, 'model.conv_impl') == 'xla':
    return nn.Conv(**kw)
  from genlab.models import layers  # pylint: disable=g-import-not-at-top
  return layers.conv(impl, **kw)


def _conv_transpose(impl, name, **kw):
  kw = dict(kernel_init=weight_init, bias_init=nn.initializers.zeros, name=name, **kw)
  if one_of(impl, CONV_TRANSPOSE_IMPLS, 'model.conv_transpose_impl') == 'xla':
    return nn.ConvTranspose(**kw)
  from genlab.models import layers  # pylint: disable=g-import-not-at-top
  return layers.conv_transpose('subpixel', **kw)


class ResnetBlock(nn.Module):
  """x + [reflect 1, conv3, IN, ReLU, reflect 1, conv3, IN](x) (He et al. 2016, as the
  official ResnetBlock with padding_type='reflect', use_dropout=False): the paper's R256."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC):
    h = _conv('xla', 'conv_0', features=self.features, kernel_size=(3, 3), padding='VALID',
              dtype=self.dtype)(_reflect(x_BxHxWxC, 1))
    h = nn.relu(_instance_norm(self.dtype, 'norm_0')(h))
    h = _conv('xla', 'conv_1', features=self.features, kernel_size=(3, 3), padding='VALID',
              dtype=self.dtype)(_reflect(h, 1))
    return x_BxHxWxC + _instance_norm(self.dtype, 'norm_1')(h)


class ResnetGenerator(nn.Module):
  """The CycleGAN generator (Zhu et al. 2017, Appendix 7.2; Johnson et al. 2016's network).

  c7s1-f, d2f, d4f, num_blocks x R4f, u2f, uf, c7s1-out_channels (for num_downsampling=2):
    c7s1-k  reflect pad 3, conv 7x7 stride 1 -> k, IN, ReLU
    dk      conv 3x3 stride 2 pad 1 -> k, IN, ReLU
    Rk      ResnetBlock(k)
    uk      ConvTranspose 3x3 stride 2 padding 1 output_padding 1 -> k (n -> 2n), IN, ReLU
    last    reflect pad 3, conv 7x7 -> out_channels, tanh (no norm).
  The paper uses 6 blocks at 128x128 and 9 at 256x256 and up. Any H, W: the input is
  reflect-padded up to a multiple of 2**num_downsampling (so that the up-sampling path
  returns the down-sampled size exactly) and the output cropped back, so the output has the
  input's spatial shape. Instance norm makes each sample's output independent of the rest
  of the batch.
  """
  out_channels: int
  features: int = 64
  num_blocks: int = 9
  num_downsampling: int = 2
  conv_transpose_impl: str = 'fast'
  conv_impl: str = 'xla'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC):
    if self.num_downsampling < 0 or self.num_blocks < 0:
      raise UserError(f'ResnetGenerator: num_downsampling={self.num_downsampling} and '
                      f'num_blocks={self.num_blocks} must be >= 0.')
    _, height, width, _ = x_BxHxWxC.shape
    multiple = 2 ** self.num_downsampling
    pad_h, pad_w = -height % multiple, -width % multiple
    # Reflect (not zero) padding, split over both sides: the padded border looks like image
    # content to the convs, as the official reflection padding at the stem does.
    top, left = pad_h // 2, pad_w // 2
    h = jnp.pad(x_BxHxWxC.astype(self.dtype),
                ((0, 0), (top, pad_h - top), (left, pad_w - left), (0, 0)), mode='reflect')
    h = _conv('xla', 'stem', features=self.features, kernel_size=(7, 7), padding='VALID',
              dtype=self.dtype)(_reflect(h, 3))
    h = nn.relu(_instance_norm(self.dtype, 'stem_norm')(h))
    for i in range(self.num_downsampling):
      h = _conv(self.conv_impl, f'down_{i}', features=self.features * 2 ** (i + 1),
                kernel_size=(3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                dtype=self.dtype)(h)
      h = nn.relu(_instance_norm(self.dtype, f'down_{i}_norm')(h))
    inner = self.features * 2 ** self.num_downsampling
    for i in range(self.num_blocks):
      h = ResnetBlock(inner, self.dtype, name=f'block_{i}')(h)
    for i in range(self.num_downsampling):
      # PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) pads the dilated
      # input by k-1-p = 1 before and k-1-p+output_padding = 2 after: n -> 2n.
      h = _conv_transpose(self.conv_transpose_impl, f'up_{i}',
                          features=inner // 2 ** (i + 1), kernel_size=(3, 3), strides=(2, 2),
                          padding=((1, 2), (1, 2)), dtype=self.dtype)(h)
      h = nn.relu(_instance_norm(self.dtype, f'up_{i}_norm')(h))
    h = _conv('xla', 'head', features=self.out_channels, kernel_size=(7, 7), padding='VALID',
              dtype=self.dtype)(_reflect(h, 3))
    h = h[:, top:top + height, left:left + width]
    return jnp.tanh(h.astype(jnp.float32))


def receptive_field(num_layers: int) -> int:
  """Side in pixels of the input patch that one output of PatchDiscriminator sees.

  Walking back from one output: each 4x4 stride-1 conv adds 3 pixels, each 4x4 stride-2
  conv maps r to 2r + 2. num_layers=3: 70 (the paper's 70x70 PatchGAN), 2: 34, 1: 16.
  """
  if num_layers < 1:
    raise UserError(f'PatchDiscriminator: num_layers={num_layers} must be >= 1.')
  r = 1 + 3 + 3                      # the two stride-1 convs
  for _ in range(num_layers):        # the stride-2 convs
    r = 2 * r + 2
  return r


class PatchDiscriminator(nn.Module):
  """PatchGAN (Isola et al. 2017, Sec. 3.2.2; Zhu et al. 2017, Appendix 7.2): one real/fake
  score per overlapping patch of side receptive_field(num_layers), no sigmoid (LSGAN).

  The official NLayerDiscriminator: C64 (conv 4x4 stride 2 pad 1, LeakyReLU 0.2, no norm);
  for n = 1..num_layers-1 conv 4x4 stride 2 pad 1 to features*min(2**n, 8), IN, LeakyReLU;
  conv 4x4 stride 1 pad 1 to features*min(2**num_layers, 8), IN, LeakyReLU; conv 4x4 stride 1
  pad 1 to one channel. Returns (B, h, w, 1) scores, float32.

  num_layers=3 is the 70x70 PatchGAN, 70/256 of the paper's 256-px images (~0.27). For 28-32
  px images no PatchGAN is that small: num_layers=1 (16 px, ~0.5-0.57 of the image, a 12x12
  score map at 28 px) is the nearest, and num_layers=2 (34 px) already sees the whole image
  from every output (a 5x5 map at 28 px, whose outputs differ only near the borders).
  """
  features: int = 64
  num_layers: int = 3
  conv_impl: str = 'xla'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxHxWxC):
    receptive_field(self.num_layers)  # validates num_layers
    conv = lambda impl, name, features, stride: _conv(
        impl, name, features=features, kernel_size=(4, 4), strides=(stride, stride),
        padding=((1, 1), (1, 1)), dtype=self.dtype)
    h = nn.leaky_relu(conv(self.conv_impl, 'conv_0', self.features, 2)(
        x_BxHxWxC.astype(self.dtype)), 0.2)
    for n in range(1, self.num_layers):
      h = conv(self.conv_impl, f'conv_{n}', self.features * min(2 ** n, 8), 2)(h)
      h = nn.leaky_relu(_instance_norm(self.dtype, f'norm_{n}')(h), 0.2)
    n = self.num_layers
    h = conv('xla', f'conv_{n}', self.features * min(2 ** n, 8), 1)(h)
    h = nn.leaky_relu(_instance_norm(self.dtype, f'norm_{n}')(h), 0.2)
    h = conv('xla', f'conv_{n + 1}', 1, 1)(h)
    return h.astype(jnp.float32)
