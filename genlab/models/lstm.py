"""LSTM language model: embedding, a stack of LSTM layers, softmax over the vocabulary.

  e_t = E[x_t];  (c^l_t, h^l_t) = LSTM_l(h^{l-1}_t, (c^l_{t-1}, h^l_{t-1})), h^0_t = e_t;
  p(x_{t+1} | x_{<=t}) = softmax(W h^L_t + b)

The cell is flax's OptimizedLSTMCell (Hochreiter & Schmidhuber 1997 with the forget gate of
Gers et al. 2000; the four gates in one matmul), run over time (`time_loop`) by `nn.RNN` (a
lax.scan, 'scan'), by a Python loop over time steps ('unrolled'), or as `HoistedLSTM`
('hoisted'): the input projections of all time steps as one matmul before the scan, only the
recurrent one inside it, as cuDNN's LSTM does. All three hold the same parameters under the
same names, so one checkpoint serves each; the benchmark compares them.
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
from flax.linen.recurrent import DenseParams

Carry = tuple  # ((c_1, h_1), ..., (c_L, h_L)), each (B, hidden)
TIME_LOOPS = ('scan', 'hoisted', 'unrolled')
_GATES = ('i', 'f', 'g', 'o')


class HoistedLSTM(nn.Module):
  """An LSTM layer over a sequence, with OptimizedLSTMCell's parameters and gates:

    [i f g o]_t = x_t W_x + (h_{t-1} W_h + b),  c_t = s(f) c_{t-1} + s(i) tanh(g),
    h_t = s(o) tanh(c_t)

  where x_t W_x + b is computed for every t at once, as one (B T, D) x (D, 4H) matmul before
  the lax.scan; only h_{t-1} W_h stays inside it (cuDNN's LSTM splits the work the same way).
  """
  features: int
  unroll: int = 1

  @nn.compact
  def __call__(self, carry, x_BxTxD: jax.Array):
    # Made in OptimizedLSTMCell's order with its initialisers, so `init` draws the same values.
    kernels_x, kernels_h, biases = [], [], []
    for gate in _GATES:
      kernels_x.append(DenseParams(self.features, use_bias=False, name=f'i{gate}')(x_BxTxD)[0])
      k, b = DenseParams(self.features, use_bias=True,
                         kernel_init=nn.initializers.orthogonal(), name=f'h{gate}')(carry[1])
      kernels_h.append(k)
      biases.append(b)
    w_h = jnp.concatenate(kernels_h, axis=-1)
    gates_x = x_BxTxD @ jnp.concatenate(kernels_x, axis=-1) + jnp.concatenate(biases)

    def step(c_h, gx_BxG):
      c, h = c_h
      i, f, g, o = jnp.split(gx_BxG + h @ w_h, 4, axis=-1)
      c = nn.sigmoid(f) * c + nn.sigmoid(i) * jnp.tanh(g)
      h = nn.sigmoid(o) * jnp.tanh(c)
      return (c, h), h

    carry, h_TxBxH = jax.lax.scan(step, carry, jnp.swapaxes(gates_x, 0, 1), unroll=self.unroll)
    return carry, jnp.swapaxes(h_TxBxH, 0, 1)


class LSTMLanguageModel(nn.Module):
  vocab_size: int
  embed_dim: int = 128
  hidden_dim: int = 256
  num_layers: int = 2
  dropout: float = 0.0
  tie_weights: bool = False
  unroll: int = 1              # lax.scan's unroll factor
  time_loop: str = 'scan'      # one of TIME_LOOPS

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
      name = f'lstm_{layer}'
      if self.time_loop == 'hoisted':
        layer_carry, x = HoistedLSTM(self.hidden_dim, self.unroll, name=name)(carry[layer], x)
      elif self.time_loop == 'unrolled':
        cell = nn.OptimizedLSTMCell(self.hidden_dim, name=name)
        layer_carry, outputs = carry[layer], []
        for t in range(tokens.shape[1]):
          layer_carry, y = cell(layer_carry, x[:, t])
          outputs.append(y)
        x = jnp.stack(outputs, axis=1)
      else:
        layer_carry, x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_dim, name=name),
                                unroll=self.unroll, return_carry=True,
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
