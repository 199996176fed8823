"""Encoders and decoders of the variational autoencoder (Kingma & Welling 2014).

The MLP follows Burda et al. 2016 ("Importance Weighted Autoencoders", Sec. 5, one stochastic
layer): z=50, two deterministic layers of 200 tanh units on each side. The encoder gives the
mean and log-variance of a diagonal Gaussian q(z|x) (Kingma & Welling 2014, Appendix C.2);
the decoder gives the parameters of p(x|z) as a dict:

  'bernoulli'  {'logits': (..., H, W, C)}                         binary data (App. C.1)
  'gaussian'   {'mean': (..., H, W, C), 'log_scale': (H, W, C) or ()}   continuous data;
               log_scale is a learned log standard deviation, per pixel or global, floored
               at `min_log_scale` so that constant pixels cannot drive the density to +inf.

Decoders take latents with any leading shape, e.g. z_KxBxZ for K importance samples.
The convolutional variant (strided convs down, nearest-upsampling convs up, cropped to the
image size) works for any H, W, e.g. 28x28, 8x8 and 32x32.

`dtype` is the compute dtype (bfloat16 on accelerators); parameters stay float32 and every
output is cast back to float32, so likelihoods and bounds are always computed in float32.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LIKELIHOODS = ('bernoulli', 'gaussian')
GAUSSIAN_SCALES = ('per_pixel', 'global')


class ObservationHead(nn.Module):
  """Raw decoder output (..., H, W, C) -> the parameters of p(x|z)."""
  likelihood: str = 'bernoulli'
  gaussian_scale: str = 'per_pixel'
  min_log_scale: float = -5.0

  @nn.compact
  def __call__(self, out_NxHxWxC: jax.Array) -> dict[str, jax.Array]:
    if self.likelihood == 'bernoulli':
      return {'logits': out_NxHxWxC}
    if self.likelihood != 'gaussian':
      raise ValueError(f'likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}')
    shape = out_NxHxWxC.shape[-3:] if self.gaussian_scale == 'per_pixel' else ()
    log_scale = self.param('log_scale', nn.initializers.zeros, shape)
    return {'mean': out_NxHxWxC, 'log_scale': jnp.maximum(log_scale, self.min_log_scale)}


# The deterministic codes of plain autoencoders (genlab/models/autoencoder.py).
CODE_ACTIVATIONS = {'linear': lambda h: h, 'sigmoid': nn.sigmoid, 'relu': nn.relu,
                    'tanh': nn.tanh}


def _encoder_head(encoder: nn.Module, h: jax.Array):
  """An encoder's dense layers, then its float32 output: the mean and log-variance of q(z|x)
  when encoder.code_activation is None (a VAE), else the code, through that activation.

  Called from an encoder's compact __call__, so the layers are the encoder's own.
  """
  for width in encoder.hidden_dims:
    h = encoder.activation(nn.Dense(width, dtype=encoder.dtype)(h))
  if encoder.code_activation is not None:
    code = nn.Dense(encoder.latent_dim, name='code', dtype=encoder.dtype)(h)
    return CODE_ACTIVATIONS[encoder.code_activation](code.astype(jnp.float32))
  mean = nn.Dense(encoder.latent_dim, name='mean', dtype=encoder.dtype)(h)
  logvar = nn.Dense(encoder.latent_dim, name='logvar', dtype=encoder.dtype)(h)
  return mean.astype(jnp.float32), logvar.astype(jnp.float32)


class MLPEncoder(nn.Module):
  """x (B, H, W, C) -> (mean (B, Z), log-variance (B, Z)) of q(z|x), or a code (B, Z) when
  `code_activation` names one of CODE_ACTIVATIONS."""
  latent_dim: int = 50
  hidden_dims: Sequence[int] = (200, 200)
  activation: Callable = nn.tanh
  dtype: jnp.dtype = jnp.float32
  code_activation: str | None = None

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array):
    h = x_BxHxWxC.reshape(x_BxHxWxC.shape[0], -1)
    return _encoder_head(self, h)


class MLPDecoder(nn.Module):
  """z (..., Z) -> parameters of p(x|z), each (..., H, W, C)."""
  image_shape: tuple[int, int, int]
  hidden_dims: Sequence[int] = (200, 200)
  likelihood: str = 'bernoulli'
  gaussian_scale: str = 'per_pixel'
  min_log_scale: float = -5.0
  activation: Callable = nn.tanh
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z_NxZ: jax.Array) -> dict[str, jax.Array]:
    h = z_NxZ
    for width in self.hidden_dims:
      h = self.activation(nn.Dense(width, dtype=self.dtype)(h))
    out = nn.Dense(math.prod(self.image_shape))(h)
    out = out.reshape(*z_NxZ.shape[:-1], *self.image_shape)
    return ObservationHead(self.likelihood, self.gaussian_scale, self.min_log_scale)(out)


class ConvEncoder(nn.Module):
  """Strided 4x4 convolutions (one per entry of `features`), then dense layers -> q(z|x), or
  a code as in MLPEncoder."""
  latent_dim: int = 50
  features: Sequence[int] = (32, 64)
  hidden_dims: Sequence[int] = (256,)
  activation: Callable = nn.relu
  dtype: jnp.dtype = jnp.float32
  code_activation: str | None = None

  @nn.compact
  def __call__(self, x_BxHxWxC: jax.Array):
    h = x_BxHxWxC
    for f in self.features:
      h = self.activation(
          nn.Conv(f, (4, 4), strides=(2, 2), padding='SAME', dtype=self.dtype)(h))
    h = h.reshape(h.shape[0], -1)
    return _encoder_head(self, h)


def upsample_nearest_2x(h_BxHxWxC: jax.Array) -> jax.Array:
  """jax.image.resize(h, (B, 2H, 2W, C), 'nearest') as a broadcast, whose backward is a sum;
  resize's gather-based backward took most of the conv decoder's step on CPU."""
  b, h, w, c = h_BxHxWxC.shape
  up = jnp.broadcast_to(h_BxHxWxC[:, :, None, :, None], (b, h, 2, w, 2, c))
  return up.reshape(b, 2 * h, 2 * w, c)


class ConvDecoder(nn.Module):
  """Dense layers, then nearest 2x upsampling + 3x3 convs, cropped to (H, W), 3x3 conv out.

  The first feature map is ceil(H / 2^n) x ceil(W / 2^n) for n = len(features), so that n
  doublings cover the image; the crop removes the excess (none for 28, 8 or 32 with n=2).
  """
  image_shape: tuple[int, int, int]
  features: Sequence[int] = (32, 64)
  hidden_dims: Sequence[int] = (256,)
  likelihood: str = 'bernoulli'
  gaussian_scale: str = 'per_pixel'
  min_log_scale: float = -5.0
  activation: Callable = nn.relu
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z_NxZ: jax.Array) -> dict[str, jax.Array]:
    lead = z_NxZ.shape[:-1]
    h = z_NxZ.reshape(-1, z_NxZ.shape[-1])
    for width in self.hidden_dims:
      h = self.activation(nn.Dense(width, dtype=self.dtype)(h))
    height, width, channels = self.image_shape
    scale = 2 ** len(self.features)
    h0, w0 = -(-height // scale), -(-width // scale)
    h = self.activation(nn.Dense(h0 * w0 * self.features[-1], dtype=self.dtype)(h))
    h = h.reshape(-1, h0, w0, self.features[-1])
    for f in reversed(self.features):
      # Resize-conv (Odena et al. 2016): no checkerboard artefacts, and XLA's CPU backward of
      # a stride-2 transposed convolution is several times slower than this.
      h = upsample_nearest_2x(h)
      h = self.activation(nn.Conv(f, (3, 3), padding='SAME', dtype=self.dtype)(h))
    h = h[:, :height, :width]
    out = nn.Conv(channels, (3, 3), padding='SAME', dtype=self.dtype)(h).astype(jnp.float32)
    out = out.reshape(*lead, *self.image_shape)
    return ObservationHead(self.likelihood, self.gaussian_scale, self.min_log_scale)(out)


class VAE(nn.Module):
  """An encoder q(z|x) and a decoder p(x|z); the prior p(z) is N(0, I)."""
  encoder: nn.Module
  decoder: nn.Module

  def encode(self, x_BxHxWxC: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.encoder(x_BxHxWxC)

  def decode(self, z_NxZ: jax.Array) -> dict[str, jax.Array]:
    return self.decoder(z_NxZ)

  def __call__(self, x_BxHxWxC: jax.Array, eps_BxZ: jax.Array) -> dict[str, jax.Array]:
    """Reparameterised pass z = mean + exp(logvar / 2) * eps (Kingma & Welling 2014, Eq. 4)."""
    mean_BxZ, logvar_BxZ = self.encode(x_BxHxWxC)
    return self.decode(mean_BxZ + jnp.exp(0.5 * logvar_BxZ) * eps_BxZ)


# Burda et al. 2016 (Sec. 5): one stochastic layer of 50 units, 2x200 tanh units each side.
BurdaEncoder = functools.partial(MLPEncoder, latent_dim=50, hidden_dims=(200, 200))
BurdaDecoder = functools.partial(MLPDecoder, hidden_dims=(200, 200))
# Tiny variants for tests: compile in well under a second on a CPU.
TinyMLPEncoder = functools.partial(MLPEncoder, latent_dim=2, hidden_dims=(16,))
TinyMLPDecoder = functools.partial(MLPDecoder, hidden_dims=(16,))
TinyConvEncoder = functools.partial(ConvEncoder, latent_dim=2, features=(4, 8), hidden_dims=())
TinyConvDecoder = functools.partial(ConvDecoder, features=(4, 8), hidden_dims=())


def make_vae(image_shape: Sequence[int], kind: str = 'mlp', latent_dim: int = 50,
             hidden_dims: Sequence[int] = (200, 200), conv_features: Sequence[int] = (32, 64),
             likelihood: str = 'bernoulli', gaussian_scale: str = 'per_pixel',
             min_log_scale: float = -5.0, dtype=jnp.float32) -> VAE:
  """The VAE for `kind` ('mlp' | 'conv'); the decoder mirrors the encoder's hidden layers."""
  image_shape = tuple(int(d) for d in image_shape)
  hidden_dims = tuple(int(d) for d in hidden_dims)
  head = dict(likelihood=likelihood, gaussian_scale=gaussian_scale, min_log_scale=min_log_scale)
  if kind == 'mlp':
    return VAE(MLPEncoder(latent_dim, hidden_dims, dtype=dtype),
               MLPDecoder(image_shape, hidden_dims[::-1], **head, dtype=dtype))
  if kind == 'conv':
    features = tuple(int(f) for f in conv_features)
    return VAE(ConvEncoder(latent_dim, features, hidden_dims, dtype=dtype),
               ConvDecoder(image_shape, features, hidden_dims[::-1], **head, dtype=dtype))
  raise ValueError(f"kind must be 'mlp' or 'conv', got {kind!r}")
