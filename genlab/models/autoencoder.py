"""Deterministic autoencoders: the VAE's encoders and decoders (genlab/models/vae.py) with a
code in place of q(z|x).

The encoder maps x (B, H, W, C) to a code (B, Z) through `code_activation` ('linear' for a
bottleneck autoencoder, 'sigmoid' for Ng's sparse autoencoder, whose KL penalty needs mean
activations in (0, 1)); the decoder maps codes back to per-pixel logits (B, H, W, C), read as
sigmoid(logits) = the reconstruction in [0, 1]. With hidden_dims=() the MLP encoder is one
layer, and its kernel columns are the learned features (Ng 2011, "Sparse autoencoder", Sec. 5).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from genlab.models import vae as vae_models

ACTIVATIONS = {'relu': nn.relu, 'tanh': nn.tanh, 'sigmoid': nn.sigmoid, 'elu': nn.elu}


class Autoencoder(nn.Module):
  """x -> code -> logits of the reconstruction."""
  encoder: nn.Module
  decoder: nn.Module

  def encode(self, x_BxHxWxC: jax.Array) -> jax.Array:
    return self.encoder(x_BxHxWxC)

  def decode(self, code_BxZ: jax.Array) -> jax.Array:
    return self.decoder(code_BxZ)['logits']

  def __call__(self, x_BxHxWxC: jax.Array) -> jax.Array:
    return self.decode(self.encode(x_BxHxWxC))


def make_autoencoder(image_shape: Sequence[int], kind: str = 'mlp', latent_dim: int = 32,
                     hidden_dims: Sequence[int] = (512, 256),
                     conv_features: Sequence[int] = (32, 64), code_activation: str = 'linear',
                     activation: str = 'relu', dtype=jnp.float32) -> Autoencoder:
  """The autoencoder for `kind` ('mlp' | 'conv'); the decoder mirrors the encoder."""
  image_shape = tuple(int(d) for d in image_shape)
  hidden_dims = tuple(int(d) for d in hidden_dims)
  if code_activation not in vae_models.CODE_ACTIVATIONS:
    raise ValueError(f'code_activation must be one of {list(vae_models.CODE_ACTIVATIONS)}, '
                     f'got {code_activation!r}')
  act = ACTIVATIONS[activation]
  common = dict(activation=act, dtype=dtype)
  if kind == 'mlp':
    return Autoencoder(
        vae_models.MLPEncoder(latent_dim, hidden_dims, code_activation=code_activation,
                              **common),
        vae_models.MLPDecoder(image_shape, hidden_dims[::-1], **common))
  if kind == 'conv':
    features = tuple(int(f) for f in conv_features)
    return Autoencoder(
        vae_models.ConvEncoder(latent_dim, features, hidden_dims,
                               code_activation=code_activation, **common),
        vae_models.ConvDecoder(image_shape, features, hidden_dims[::-1], **common))
  raise ValueError(f"kind must be 'mlp' or 'conv', got {kind!r}")
