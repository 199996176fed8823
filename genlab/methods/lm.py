"""Language models: next-token cross-entropy, evaluated in bits per token, generating text.

The objective over a window of T tokens (the data layer's `inputs`, `targets`):
  L = -1/(B T) sum_b sum_t log p(x_{t+1} | x_{<=t})          (nats per token)
With config.data.tbptt the LSTM state at the end of a window starts the next one (and is not
differentiated through: truncated BPTT, Williams & Peng 1990); 'reset' rows start from zero.

Evaluation reports, per scored token of the held-out split:
  nll = -1/N sum log p (nats), bits_per_token = nll / ln 2 (bits per character for a character
  model), perplexity = exp(nll) (per word token for a word model; Jelinek et al. 1977).
Generation runs inside one jitted lax.scan: the prompt is read in one pass, then each step
draws x ~ softmax(logits / temperature) restricted to the top-k logits and to the nucleus, the
smallest set of most likely tokens whose probability reaches top_p (Holtzman et al. 2020,
"The curious case of neural text degeneration", Sec. 3.1), and feeds it back.
`analyze` fits count-based baselines on the same streams (metrics/ngram.py): unigram and
n-gram models with Kneser-Ney and Witten-Bell smoothing, the best chosen on validation.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from genlab import data as data_lib
from genlab.data import text as text_lib
from genlab import methods
from genlab import optim
from genlab.config_checks import Range, count, fraction, natural, positive
from genlab.errors import UserError, int_at_least, one_of
from genlab.metrics import ngram
from genlab.models import lstm as lstm_models

SMOOTHINGS = ('kneser_ney', 'interpolated')

DATA = 'text'
# Ranges of this method's config keys (genlab/config_checks.py).
CONFIG_RANGES = {
    'data.vocab_size': natural('0 keeps every character'), 'data.seq_len': count(),
    'data.held_out_fraction': Range(low=0, high=0.5, low_open=True, high_open=True,
                                    why='held out for validation and again for test'),
    'model.embed_dim': count(), 'model.hidden_dim': count(), 'model.num_layers': count(),
    'model.unroll': count(), 'model.dropout': fraction(),
    'eval.seq_len': count(), 'eval.context': natural(),
    'sample.temperatures': positive(), 'sample.length': count(), 'sample.top_k': natural(
        '0 samples among all tokens'),
    'sample.top_p': Range(low=0, high=1, low_open=True, why='1 keeps every token'),
    'baseline.orders': count(),
}


class LMState(train_state.TrainState):
  carry: Any = None  # the LSTM state carried across steps (config.data.tbptt), else None


# -- sampling ----------------------------------------------------------------------------------
def filter_logits(logits: jax.Array, temperature, top_k, top_p) -> jax.Array:
  """logits / temperature with everything outside the top-k and the top-p nucleus at -inf.

  top_k = 0 and top_p = 1 keep every token. All three may be traced values: one compiled
  sampler serves every setting. The nucleus keeps the most likely tokens up to and including
  the first whose cumulative probability reaches top_p (so at least one token).
  """
  logits = logits.astype(jnp.float32) / temperature
  vocab = logits.shape[-1]

  def restrict(logits):
    ordered = jnp.sort(logits, axis=-1)[..., ::-1]  # descending
    k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)
    kth = jnp.take_along_axis(ordered, jnp.broadcast_to(k - 1, logits.shape[:-1])[..., None],
                              axis=-1)
    probs = jax.nn.softmax(ordered, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # probability of the more likely tokens
    n_nucleus = jnp.where(top_p >= 1, vocab, jnp.sum(before < top_p, axis=-1, keepdims=True))
    nth = jnp.take_along_axis(ordered, n_nucleus - 1, axis=-1)
    return jnp.where(logits < jnp.maximum(kth, nth), -jnp.inf, logits)

  # The sort costs more than the LSTM step for a large vocabulary: skip it when nothing is cut.
  return jax.lax.cond((top_k > 0) | (top_p < 1), restrict, lambda x: x, logits)


def check_sampling(temperature, top_k, top_p, length) -> None:
  if not isinstance(temperature, (int, float)) or not temperature > 0:
    raise UserError(f'temperature={temperature!r}: give a temperature > 0 (e.g. 0.2, 0.5, 1.0, '
                    '1.2; lower is more conservative).')
  int_at_least(top_k, 0, 'sample.top_k (or --top_k)')
  if not 0 < top_p <= 1:
    raise UserError(f'top_p={top_p!r}: the nucleus mass must be in (0, 1]; 1 keeps every token.')
  int_at_least(length, 1, 'sample.length (or --length)')


# -- settings ----------------------------------------------------------------------------------
def _settings(config, data_info) -> ml_collections.ConfigDict:
  if data_info.tokenizer is None:
    raise UserError(f"config.method='lm' needs a text data set and config.data.tokenizer "
                    f"('char' or 'word'); {data_info.name!r} is not one.")
  model = methods.section(config, 'model')
  s = ml_collections.ConfigDict()
  s.embed_dim = int_at_least(model.get('embed_dim', 128), 1, 'model.embed_dim')
  s.hidden_dim = int_at_least(model.get('hidden_dim', 256), 1, 'model.hidden_dim')
  s.num_layers = int_at_least(model.get('num_layers', 2), 1, 'model.num_layers')
  s.dropout = float(model.get('dropout', 0.0))
  if not 0 <= s.dropout < 1:
    raise UserError(f'config.model.dropout={s.dropout}: give a probability in [0, 1).')
  s.tie_weights = bool(model.get('tie_weights', False))
  s.unroll = int_at_least(model.get('unroll', 1), 1, 'model.unroll')
  s.time_loop = one_of(model.get('time_loop', 'scan'), lstm_models.TIME_LOOPS, 'model.time_loop')
  sample = methods.section(config, 'sample')
  s.prompt = sample.get('prompt', '\n')
  s.temperatures = tuple(sample.get('temperatures', (0.2, 0.5, 1.0, 1.2)))
  s.length = sample.get('length', 300)
  s.top_k = sample.get('top_k', 0)
  s.top_p = float(sample.get('top_p', 1.0))
  s.suppress_unk = bool(sample.get('suppress_unk', True))
  for t in s.temperatures:
    check_sampling(t, s.top_k, s.top_p, s.length)
  baseline = methods.section(config, 'baseline')
  s.orders = tuple(int_at_least(n, 1, 'baseline.orders') for n in baseline.get('orders', ()))
  return s


def build_model(config, data_info, s=None) -> lstm_models.LSTMLanguageModel:
  """The LSTM of `config` (its checked settings `s`, when the caller has them)."""
  s = _settings(config, data_info) if s is None else s
  return lstm_models.LSTMLanguageModel(
      vocab_size=data_info.vocab_size, embed_dim=s.embed_dim, hidden_dim=s.hidden_dim,
      num_layers=s.num_layers, dropout=s.dropout, tie_weights=s.tie_weights, unroll=s.unroll,
      time_loop=s.time_loop)


def ngram_baselines(arrays, vocab_size: int, orders) -> dict[str, float]:
  """Bits per token on test of every (order, smoothing) and of the best one on validation."""
  train, valid, test = (arrays(role)['ids'] for role in ('train', 'eval', 'test'))
  out, best = {}, None
  for order in orders:
    for smoothing in (('add_one',) if order == 1 else ()) + SMOOTHINGS:
      model = ngram.fit(train, order, vocab_size, smoothing)
      v, t = ngram.bits_per_token(model, valid), ngram.bits_per_token(model, test)
      out[f'baseline/{smoothing}_{order}/bits_per_token'] = t
      if best is None or v < best[0]:
        best = (v, t, order, smoothing)
  if best is not None:
    out.update({'baseline/best/bits_per_token': best[1], 'baseline/best/order': best[2],
                'baseline/best/perplexity': 2.0 ** best[1],
                'baseline/best/kneser_ney': float(best[3] == 'kneser_ney')})
  return out


# -- the method --------------------------------------------------------------------------------
def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  s = _settings(config, data_info)
  model = build_model(config, data_info, s)
  tok = data_info.tokenizer
  tx, schedule = optim.make_optimizer(config)
  data = text_lib.settings(config)  # the data layer's reading of data.tbptt and data.seq_len
  tbptt, seq_len = data['tbptt'], data['seq_len']

  def init(key):
    params = model.init(key, jnp.zeros((1, seq_len), jnp.int32))['params']
    carry = model.zero_carry(config.batch_size) if tbptt else None
    return LMState.create(apply_fn=model.apply, params=params, tx=tx, carry=carry)

  def loss_fn(params, batch, key, carry):
    logits, carry = model.apply({'params': params}, batch['inputs'], carry, train=True,
                                rngs={'dropout': key})
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])
    return nll.mean(), carry

  def train_step(state, batch, key):
    carry = None
    if tbptt:
      keep = (1.0 - batch['reset'])[:, None]
      carry = jax.tree.map(lambda c: c * keep, state.carry)
    (loss, carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, batch, key, carry)
    metrics = {'loss': loss, 'bits_per_token': loss / math.log(2),
               'grad_norm': optax.global_norm(grads), 'learning_rate': schedule(state.step)}
    state = state.apply_gradients(grads=grads)
    if tbptt:
      state = state.replace(carry=jax.lax.stop_gradient(carry))
    return state, metrics

  def eval_step(state, batch, key):
    del key
    logits, _ = model.apply({'params': state.params}, batch['inputs'])
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])
    return {'nll': jnp.sum(nll * batch['weights']), '_count': jnp.sum(batch['weights'])}

  def summarize(means):
    nll = means['nll']
    out = {'nll': nll, 'bits_per_token': nll / math.log(2), 'perplexity': math.exp(min(nll, 700))}
    if tok.kind == 'char':
      out['bits_per_char'] = out['bits_per_token']
    return out

  @functools.partial(jax.jit, static_argnames='length')
  def generate_ids(params, key, prompt, temperature, top_k, top_p, length):
    """prompt int (N, P) -> (N, length) sampled continuation ids."""
    logits, carry = model.apply({'params': params}, prompt)

    def step(state, key_t):
      carry, last = state
      if s.suppress_unk:  # <unk> is not a word to print: sample among the known tokens
        last = last.at[:, 0].set(-jnp.inf)
      token = jax.random.categorical(key_t, filter_logits(last, temperature, top_k, top_p))
      logits, carry = model.apply({'params': params}, token[:, None].astype(jnp.int32), carry)
      return (carry, logits[:, 0]), token

    _, tokens = jax.lax.scan(step, (carry, logits[:, -1]), jax.random.split(key, length))
    return tokens.T

  def generate_text(state, key, num: int, *, prompt=None, temperature=1.0, length=None,
                    top_k=None, top_p=None) -> list[str]:
    """`num` continuations of `prompt` (default config.sample.prompt), prompt included."""
    prompt = s.prompt if prompt is None else prompt
    length = s.length if length is None else length
    top_k = s.top_k if top_k is None else top_k
    top_p = s.top_p if top_p is None else top_p
    check_sampling(temperature, top_k, top_p, length)
    ids = data_lib.encode_prompt(tok, prompt)
    out = generate_ids(state.params, key, jnp.asarray(np.tile(ids, (num, 1))),
                       jnp.float32(temperature), jnp.int32(top_k), jnp.float32(top_p),
                       length=int(length))
    out = np.asarray(jax.device_get(out))
    return [tok.decode(np.concatenate([ids, row])) for row in out]

  def visualize(state, key, batch):
    del batch
    return {f'temperature_{t:g}': generate_text(state, jax.random.fold_in(key, i), 1,
                                                temperature=t)[0]
            for i, t in enumerate(s.temperatures)}

  def analyze(state, key, arrays):
    del state, key
    return ngram_baselines(arrays, data_info.vocab_size, s.orders), {}

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step,
                        visualize=visualize, analyze=analyze if s.orders else None,
                        summarize=summarize, generate_text=generate_text)
