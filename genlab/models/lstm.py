"""LSTM language model: embedding, a stack of LSTM layers, softmax over the vocabulary.

  e_t = E[x_t];  (c^l_t, h^l_t) = LSTM_l(h^{l-1}_t, (c^l_{t-1}, h^l_{t-1})), h^0_t = e_t;
  p(x_{t+1} | x_{<=t}) = softmax(W h^L_t + b)

The cell is flax's OptimizedLSTMCell (Hochreiter & Schmidhuber 1997 with the forget gate of
Gers et al. 2000; the four gates in one matmul), run over time by `nn.RNN` (a lax.scan; or
by a Python loop over time steps with `unroll_time=True`, which the benchmark compares).
Dropout is applied to the embedding, between layers and before the output (Zaremba et al.
2014, "Recurrent neural network regularization", Sec. 3: on non-recurrent connections only).
With `tie_weights` the output layer is the transposed embedding, W = E (Press & Wolf 2017;
Inan et al. 2017); a hidden size that differs from the embedding size is projected to it first.

The carry is a tuple with one (c, h) pair of (B, hidden) per layer. It is an input and an
output, so a caller can carry the state across windows (truncated BPTT) or across generated
tokens.
"""
from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

Carry = tuple  # ((c_1, h_1), ..., (c_L, h_L)), each (B, hidden)


class LSTMLanguageModel(nn.Module):
  vocab_size: int
  embed_dim: int = 128
  hidden_dim: int = 256
  num_layers: int = 2
  dropout: float = 0.0
  tie_weights: bool = False
  unroll: int = 1              # lax.scan's unroll factor
  unroll_time: bool = False    # a Python loop over time steps instead of a scan

  def zero_carry(self, batch_size: int, dtype=jnp.float32) -> Carry:
    zeros = jnp.zeros((batch_size, self.hidden_dim), dtype)
    return tuple((zeros, zeros) for _ in range(self.num_layers))

  @nn.compact
  def __call__(self, tokens: jax.Array, carry: Optional[Carry] = None, *,
               train: bool = False) -> tuple[jax.Array, Carry]:
    """tokens int (B, T) -> (logits float32 (B, T, vocab_size), the carry after step T)."""
    if carry is None:
      carry = self.zero_carry(tokens.shape[0])
    embed = nn.Embed(self.vocab_size, self.embed_dim, name='embed',
                     embedding_init=nn.initializers.normal(stddev=0.1))
    x = nn.Dropout(self.dropout, deterministic=not train)(embed(tokens))
    new_carry = []
    for layer in range(self.num_layers):
      cell = nn.OptimizedLSTMCell(self.hidden_dim, name=f'lstm_{layer}')
      if self.unroll_time:
        layer_carry, outputs = carry[layer], []
        for t in range(tokens.shape[1]):
          layer_carry, y = cell(layer_carry, x[:, t])
          outputs.append(y)
        x = jnp.stack(outputs, axis=1)
      else:
        layer_carry, x = nn.RNN(cell, unroll=self.unroll, return_carry=True,
                                name=f'rnn_{layer}')(x, initial_carry=carry[layer])
      new_carry.append(layer_carry)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    if self.tie_weights:
      if self.hidden_dim != self.embed_dim:
        x = nn.Dense(self.embed_dim, name='project')(x)
      bias = self.param('output_bias', nn.initializers.zeros, (self.vocab_size,))
      logits = embed.attend(x) + bias
    else:
      logits = nn.Dense(self.vocab_size, name='output')(x)
    return logits.astype(jnp.float32), tuple(new_carry)
