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

import functools
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
    # Time-major before the matmul, so that the transposed array is the input (D wide), not
    # the gates (4H wide).
    gates_x = (jnp.swapaxes(x_BxTxD, 0, 1) @ jnp.concatenate(kernels_x, axis=-1)
               + jnp.concatenate(biases))
    carry, h_TxBxH = recurrence(gates_x, carry, w_h, self.unroll)
    return carry, jnp.swapaxes(h_TxBxH, 0, 1)


def _forward_scan(gx_TxBxG, carry, w_h, unroll):
  """((c_T, h_T), h_TxBxH, what the backward pass needs) of the recurrence."""

  def step(c_h, gx_BxG):
    c, h = c_h
    zi, zf, zg, zo = jnp.split(gx_BxG + h @ w_h, 4, axis=-1)
    i, f, g, o = nn.sigmoid(zi), nn.sigmoid(zf), jnp.tanh(zg), nn.sigmoid(zo)
    c_new = f * c + i * g
    tanh_c = jnp.tanh(c_new)
    h_new = o * tanh_c
    return (c_new, h_new), (h_new, (i, f, g, o, c, tanh_c, h))

  carry, (h_TxBxH, saved) = jax.lax.scan(step, carry, gx_TxBxG, unroll=unroll)
  return carry, h_TxBxH, saved


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def recurrence(gx_TxBxG, carry, w_h, unroll: int = 1):
  """The LSTM recurrence over time given each step's input gates gx_t = x_t W_x + b:
  ((c_T, h_T), h_TxBxH). Its gradient is written out (below) so that only the two matmuls a
  step needs stay inside the loops, h_{t-1} W_h forward and dz_t W_h^T backward; the kernel
  gradient dW_h = sum_t h_{t-1}^T dz_t is one (H, T B) x (T B, 4H) matmul after the loop,
  where autodiff of the scan would accumulate T small ones inside it (as cuDNN's LSTM does)."""
  carry, h_TxBxH, _ = _forward_scan(gx_TxBxG, carry, w_h, unroll)
  return carry, h_TxBxH


def _recurrence_fwd(gx_TxBxG, carry, w_h, unroll):
  carry, h_TxBxH, saved = _forward_scan(gx_TxBxG, carry, w_h, unroll)
  return (carry, h_TxBxH), (saved, w_h)


def _recurrence_bwd(unroll, residuals, cotangents):
  """Backpropagation through time. With c_t = f c_{t-1} + i g and h_t = o tanh(c_t):
  dc_t += dh_t o (1 - tanh^2 c_t); di = dc_t g, df = dc_t c_{t-1}, dg = dc_t i, do = dh_t tanh c_t;
  dz = [di i(1-i), df f(1-f), dg (1-g^2), do o(1-o)]; dc_{t-1} = dc_t f, dh_{t-1} = dz W_h^T."""
  (i, f, g, o, c_prev, tanh_c, h_prev), w_h = residuals
  (dc_last, dh_last), dh_TxBxH = cotangents

  def step(dc_dh, xs):
    dc, dh = dc_dh
    i, f, g, o, c_prev, tanh_c, dh_out = xs
    dh = dh + dh_out
    dc = dc + dh * o * (1.0 - tanh_c * tanh_c)
    dz = jnp.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                          dc * i * (1.0 - g * g), dh * tanh_c * o * (1.0 - o)], axis=-1)
    return (dc * f, dz @ w_h.T), dz

  (dc0, dh0), dz_TxBxG = jax.lax.scan(step, (dc_last, dh_last),
                                      (i, f, g, o, c_prev, tanh_c, dh_TxBxH),
                                      reverse=True, unroll=unroll)
  t, b, h = h_prev.shape
  dw_h = h_prev.reshape(t * b, h).T @ dz_TxBxG.reshape(t * b, 4 * h)
  return dz_TxBxG, (dc0, dh0), dw_h


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


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
