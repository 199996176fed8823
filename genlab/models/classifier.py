"""A small digit convnet: genlab's stand-in for Inception when it scores generated digits.

FID (Heusel et al. 2017), the classifier ("Inception") score (Salimans et al. 2016) and
precision/recall need an embedding of images that separates digit classes well; for 28x28
digits a VGG-style convnet trained on a few thousand digits is enough and is cheap on a CPU:

  stages of `convs_per_stage` 3x3 ReLU convolutions then a 2x2 max-pool (one stage per entry
  of `stage_features`), flatten, Dense(hidden_dim) + ReLU  <- the embedding ("features"),
  dropout, Dense(num_classes)                              <- the logits.

`features` is the penultimate layer, as pool3 is for Inception in FID. No BatchNorm: the train
state is then only parameters, and the embedding of an image never depends on its batch.
`dtype` is the compute dtype (bfloat16 on accelerators); outputs are always float32.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def max_pool_2x2(h_BxHxWxC: jax.Array) -> jax.Array:
  """2x2 max-pool with stride 2 (odd sizes are floored, as nn.max_pool with VALID does).

  Written as a reshape and a max rather than `nn.max_pool`: XLA's CPU gradient of
  reduce_window (select_and_scatter) made a whole 32-64 train step about 1.7x slower here.
  """
  b, h, w, c = h_BxHxWxC.shape
  h_BxHxWxC = h_BxHxWxC[:, :h // 2 * 2, :w // 2 * 2]
  return jnp.max(h_BxHxWxC.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


class ConvClassifier(nn.Module):
  """x (B, H, W, C) in [0, 1] -> logits (B, num_classes); `features` adds the embedding."""
  num_classes: int
  stage_features: Sequence[int] = (32, 64)
  convs_per_stage: int = 2
  hidden_dim: int = 128
  dropout_rate: float = 0.5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def features(self, x_BxHxWxC: jax.Array, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    """-> (features_BxF, logits_BxK), F = hidden_dim; dropout is active only when `train`."""
    h = x_BxHxWxC.astype(self.dtype)
    for f in self.stage_features:
      for _ in range(self.convs_per_stage):
        h = nn.relu(nn.Conv(f, (3, 3), padding='SAME', dtype=self.dtype)(h))
      h = max_pool_2x2(h)
    h = h.reshape(h.shape[0], -1)
    features_BxF = nn.relu(nn.Dense(self.hidden_dim, dtype=self.dtype, name='embedding')(h))
    h = nn.Dropout(self.dropout_rate, deterministic=not train)(features_BxF)
    logits_BxK = nn.Dense(self.num_classes, dtype=self.dtype, name='logits')(h)
    return features_BxF.astype(jnp.float32), logits_BxK.astype(jnp.float32)

  def __call__(self, x_BxHxWxC: jax.Array, train: bool = False) -> jax.Array:
    return self.features(x_BxHxWxC, train)[1]


# Tiny variant for tests: compiles and trains in a second or two on a CPU.
TinyConvClassifier = functools.partial(ConvClassifier, stage_features=(8, 16),
                                       convs_per_stage=1, hidden_dim=32, dropout_rate=0.0)
