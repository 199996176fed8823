"""The noise-prediction U-Net of DDPM (Ho et al. 2020, Appendix B), sized by config.

Ho et al.'s network is PixelCNN++'s U-Net backbone with Wide-ResNet blocks: group norm in
place of weight norm, the timestep as a sinusoidal Transformer embedding added to every
residual block, and self-attention at the 16x16 resolution. Their CIFAR-10 model is
`UNet(channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2, attention_resolutions=(16,),
dropout=0.1)` (35.7 M parameters). A class-conditional network (Ho & Salimans 2022) adds a
learned class embedding to the time embedding; class `num_classes` is the null label that
classifier-free guidance trains and samples with.

Layout per resolution level (channels * channel_mults[i]):
  down:  num_res_blocks x [ResBlock (+ attention)], then a stride-2 downsampling (not on the last)
  middle: ResBlock, attention, ResBlock
  up:    num_res_blocks + 1 x [concat skip, ResBlock (+ attention)], then nearest 2x upsampling
         + 3x3 conv (not on the first)
The output convolution and the last layer of every residual branch start at zero, so the
network starts as the identity on its skips and predicts zero noise (Ho et al.'s
`default_init(1e-10)`).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genlab.models import layers

DOWNSAMPLES = ('conv', 'avg_pool')


def timestep_embedding(t_B: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal embedding of (possibly fractional) timesteps (Vaswani et al. 2017, Sec. 3.5;
  Ho et al. 2020, Appendix B): [sin(t w_i), cos(t w_i)], w_i = max_period^(-i / (dim/2 - 1))."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / max(half - 1, 1))
  args = t_B.astype(jnp.float32)[:, None] * freqs[None]
  emb = jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)
  return jnp.pad(emb, ((0, 0), (0, dim % 2)))


def _norm(groups: int, channels: int, dtype) -> nn.GroupNorm:
  """Group norm with `groups` groups, fewer where a layer has fewer channels than that."""
  return nn.GroupNorm(num_groups=math.gcd(groups, channels), dtype=dtype)


class ResBlock(nn.Module):
  """Wide-ResNet block with the time (and class) embedding added between its convolutions."""
  features: int
  norm_groups: int
  dropout: float
  conv_impl: str = 'xla'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, emb, train: bool):
    conv = lambda f, k, **kw: layers.conv(self.conv_impl, features=f, kernel_size=(k, k),
                                          dtype=self.dtype, **kw)
    h = nn.swish(_norm(self.norm_groups, x.shape[-1], self.dtype)(x))
    h = conv(self.features, 3)(h)
    h = h + nn.Dense(self.features, dtype=self.dtype)(nn.swish(emb))[:, None, None, :]
    h = nn.swish(_norm(self.norm_groups, self.features, self.dtype)(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv(self.features, 3, kernel_init=nn.initializers.zeros)(h)
    if x.shape[-1] != self.features:
      x = nn.Dense(self.features, dtype=self.dtype)(x)  # the 1x1 convolution
    return x + h


class Attention(nn.Module):
  """Single-head self-attention over all positions, residual (Ho et al.'s `attn_block`)."""
  norm_groups: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, hgt, wid, c = x.shape
    h = _norm(self.norm_groups, c, self.dtype)(x)
    qkv = nn.Dense(3 * c, dtype=self.dtype)(h).reshape(b, hgt * wid, 3, c)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    weights = jax.nn.softmax(jnp.einsum('bqc,bkc->bqk', q, k) / math.sqrt(c), axis=-1)
    h = jnp.einsum('bqk,bkc->bqc', weights, v).reshape(b, hgt, wid, c)
    return x + nn.Dense(c, dtype=self.dtype, kernel_init=nn.initializers.zeros)(h)


class UNet(nn.Module):
  """eps_theta(x_t, t[, y]): (B, H, W, C) images, (B,) timesteps, (B,) labels -> (B, H, W, C).

  `labels` is required when num_classes > 0; label num_classes means "no class".
  attention_resolutions are sides of the feature maps, after patching (28x28 digits on 2x2
  patches run at 14 and 7)."""
  channels: int = 64
  channel_mults: Sequence[int] = (1, 2, 2)
  num_res_blocks: int = 2
  attention_resolutions: Sequence[int] = (7,)
  dropout: float = 0.1
  norm_groups: int = 32
  num_classes: int = 0
  downsample: str = 'conv'
  patch_size: int = 1
  conv_impl: str = 'xla'
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, t_B, labels: Optional[jax.Array] = None, train: bool = False):
    b, height, width, out_channels = x.shape
    p = self.patch_size
    if height % p or width % p:
      raise ValueError(f'{height}x{width} images do not split into {p}x{p} patches.')
    # p x p patches as channels (space to depth): the network runs at 1/p of the resolution.
    x = x.reshape(b, height // p, p, width // p, p, out_channels).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, height // p, width // p, p * p * out_channels)
    block = lambda f: ResBlock(f, self.norm_groups, self.dropout, self.conv_impl, self.dtype)
    conv = lambda f, **kw: layers.conv(self.conv_impl, config_key='model.conv_impl', features=f,
                                       kernel_size=(3, 3), dtype=self.dtype, **kw)
    attend = lambda: Attention(self.norm_groups, self.dtype)
    emb = timestep_embedding(t_B, self.channels)
    emb = nn.Dense(4 * self.channels, dtype=self.dtype)(emb)
    emb = nn.Dense(4 * self.channels, dtype=self.dtype)(nn.swish(emb))
    if self.num_classes:
      emb = emb + nn.Embed(self.num_classes + 1, 4 * self.channels, dtype=self.dtype)(labels)

    h = conv(self.channels)(x.astype(self.dtype))
    skips = [h]
    levels = len(self.channel_mults)
    for level, mult in enumerate(self.channel_mults):
      for _ in range(self.num_res_blocks):
        h = block(self.channels * mult)(h, emb, train)
        if h.shape[1] in self.attention_resolutions:
          h = attend()(h)
        skips.append(h)
      if level != levels - 1:
        if self.downsample == 'conv':
          h = conv(h.shape[-1], strides=(2, 2))(h)
        else:
          h = nn.avg_pool(h, (2, 2), strides=(2, 2), padding='SAME')
        skips.append(h)

    h = block(h.shape[-1])(h, emb, train)
    h = attend()(h)
    h = block(h.shape[-1])(h, emb, train)

    for level, mult in reversed(list(enumerate(self.channel_mults))):
      for _ in range(self.num_res_blocks + 1):
        h = block(self.channels * mult)(jnp.concatenate([h, skips.pop()], axis=-1), emb, train)
        if h.shape[1] in self.attention_resolutions:
          h = attend()(h)
      if level != 0:
        # Nearest 2x, cropped to the skip's size (28 -> 14 -> 7 -> 14 -> 28; 7 -> 4 -> 8 -> 7).
        target = skips[-1].shape[1:3]
        h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)[:, :target[0], :target[1]]
        h = conv(h.shape[-1])(h)
    assert not skips

    h = nn.swish(_norm(self.norm_groups, h.shape[-1], self.dtype)(h))
    h = conv(p * p * out_channels, kernel_init=nn.initializers.zeros)(h)
    h = h.reshape(b, height // p, width // p, p, p, out_channels).transpose(0, 1, 3, 2, 4, 5)
    return h.reshape(b, height, width, out_channels).astype(jnp.float32)
