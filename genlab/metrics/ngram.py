"""Count-based n-gram language models: the baselines an LSTM language model must beat.

A neural language model's bits per token mean little without the classical number next to it:
an interpolated modified Kneser-Ney n-gram model (Chen & Goodman 1999), the strongest of the
count-based smoothers, plus Witten-Bell interpolation and a Laplace unigram as weaker
references. All work on token-id sequences (characters or words), in pure numpy.

Every n-gram (context + token) is hashed into one int64 key in base (vocab_size + 1), the
extra digit being the begin-of-sequence symbol BOS = vocab_size that pads each document's
start (it is a context symbol only, never predicted). Counts come from np.unique on those keys
and scoring is np.searchsorted into the sorted key tables, one pass per order, so fitting
millions of characters takes seconds and no Python loop runs per token.

Each level k = 1..order of a model stores, for its k-grams (h, w), the weight alpha(h, w) of
the k-gram itself, and for its contexts h the weight gamma(h) of the level below, so that

    p_k(w | h) = alpha_k(h, w) + gamma_k(h) p_{k-1}(w | h'),   p_0(w) = 1 / vocab_size,

with h' = h minus its first symbol, alpha = 0 for unseen k-grams and gamma = 1 for unseen
contexts (the level passes its whole mass down). Each level is a proper distribution over the
vocab_size tokens, so every model sums to 1 and gives every token, seen or not, p > 0.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from genlab.errors import UserError

SMOOTHINGS = ('kneser_ney', 'interpolated', 'add_one')
_INT64_MAX = np.iinfo(np.int64).max
# Discounts (D1, D2, D3+) used at a level whose count-of-counts n1..n4 has a zero or gives a
# discount <= 0: KenLM's --discount_fallback defaults (Heafield et al. 2013). Happens on tiny
# corpora and for character unigrams, where every symbol is seen many times.
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclasses.dataclass(frozen=True, eq=False)
class NGramModel:
  """A fitted n-gram model; see `fit`. Tables are tuples indexed by level k - 1, k = 1..order.

  ngram_keys[k-1]: sorted int64 keys of the k-grams seen in training (context of k - 1
    symbols, then the token; base vocab_size + 1, BOS = vocab_size).
  ngram_counts[k-1]: the counts used at that level: raw counts at the top level (and for
    Witten-Bell and add-one everywhere); for Kneser-Ney below the top, continuation counts
    N1+(. h w), except raw counts for k-grams that start with BOS (nothing precedes them).
  ngram_weights[k-1]: alpha_k(h, w), the k-gram's own probability mass.
  context_keys[k-1], context_weights[k-1]: sorted keys of the seen contexts h (k - 1 symbols;
    the single key 0 for the empty unigram context) and gamma_k(h), the lower level's weight.
  discounts: (order, 3) float64, Kneser-Ney's (D1, D2, D3+) per level; zeros otherwise.
  """
  order: int
  vocab_size: int
  smoothing: str
  ngram_keys: tuple
  ngram_counts: tuple
  ngram_weights: tuple
  context_keys: tuple
  context_weights: tuple
  discounts: np.ndarray

  @property
  def num_ngrams(self) -> int:
    """Distinct n-grams stored over all levels: the model's size."""
    return int(sum(len(k) for k in self.ngram_keys))


# ------------------------------------------------------------------------------ input checks


def _check_order(order, vocab_size) -> tuple[int, int]:
  if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) \
      or vocab_size < 1:
    raise UserError(f'vocab_size={vocab_size!r}: give an integer >= 1.')
  if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
    raise UserError(f'order={order!r}: give an integer >= 1 (1 = unigram).')
  order, vocab_size = int(order), int(vocab_size)
  base = vocab_size + 1
  if base**order > _INT64_MAX:
    largest = 0
    while base**(largest + 1) <= _INT64_MAX:
      largest += 1
    raise UserError(f'order={order} with vocab_size={vocab_size}: (vocab_size + 1)**order '
                    f'overflows the int64 n-gram keys; the largest possible order is {largest}.')
  return order, vocab_size


def _as_docs(ids, vocab_size: int, name: str) -> list[np.ndarray]:
  """`ids` (one 1-D array, or a list/tuple of them = documents) -> list of int64 arrays."""
  docs = list(ids) if isinstance(ids, (list, tuple)) else [ids]
  out = []
  for i, d in enumerate(docs):
    a = np.asarray(d)
    where = f'{name}[{i}]' if isinstance(ids, (list, tuple)) else name
    if a.ndim != 1:
      raise UserError(f'{where} has shape {a.shape}: pass a 1-D array of token ids, or a list of '
                      '1-D arrays (one per document), e.g. list(ids_NxT).')
    if a.size == 0:
      continue
    if not np.issubdtype(a.dtype, np.integer):
      raise UserError(f'{where} has dtype {a.dtype}: token ids must be integers; convert with '
                      '.astype(np.int64).')
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= vocab_size:
      raise UserError(f'{where} holds ids in [{lo}, {hi}], outside [0, vocab_size={vocab_size}): '
                      'remap the ids or raise vocab_size.')
    out.append(a.astype(np.int64, copy=False))
  return out


# ------------------------------------------------------------------------------- hashing


def _position_keys(docs: list[np.ndarray], order: int, base: int) -> np.ndarray:
  """int64 key of (order - 1 previous symbols, token) for every token; BOS-padded per document.

  Documents are laid out one after another, each behind its own order - 1 BOS symbols, so an
  n-gram never spans two documents.
  """
  pad = order - 1
  lens = np.array([len(d) for d in docs], np.int64)
  buf = np.full(int(lens.sum()) + pad * len(docs), base - 1, np.int64)
  pos = np.arange(int(lens.sum()), dtype=np.int64)
  pos += np.repeat(pad * np.arange(1, len(docs) + 1, dtype=np.int64), lens)
  buf[pos] = np.concatenate(docs)
  keys = np.zeros(len(pos), np.int64)
  for j in range(order):
    keys *= base
    keys += buf[pos - pad + j]
  return keys


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray, default: float):
  """values[i] where keys[i] == query (keys sorted), else `default`; vectorized."""
  idx = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
  return np.where(keys[idx] == queries, values[idx], default)


# ---------------------------------------------------------------------------------- fitting


def _group_starts(sorted_ctx: np.ndarray) -> np.ndarray:
  """Start index of each run of equal values in a sorted array."""
  return np.concatenate([[0], np.flatnonzero(np.diff(sorted_ctx)) + 1])


def _kn_discounts(counts: np.ndarray) -> np.ndarray:
  """(D1, D2, D3+) from count-of-counts n1..n4 (Chen & Goodman 1999, Sec. 3, after Ney et al.).

  Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3; with the
  KenLM fallback (0.5, 1, 1.5) when an n_i is zero or a discount comes out <= 0.
  """
  n = np.bincount(np.minimum(counts, 5), minlength=6)[1:5].astype(np.float64)
  if np.any(n == 0):
    return np.array(_FALLBACK_DISCOUNTS)
  y = n[0] / (n[0] + 2 * n[1])
  d = np.array([k - (k + 1) * y * n[k] / n[k - 1] for k in (1, 2, 3)])
  return d if np.all(d > 0) else np.array(_FALLBACK_DISCOUNTS)


def _level_weights(keys, counts, smoothing, base, vocab_size, total_tokens):
  """-> (context keys, gamma per context, alpha per k-gram, discounts) of one level."""
  ctx = keys // base
  starts = _group_starts(ctx)
  ctx_keys = ctx[starts]
  group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(keys))))
  total = np.add.reduceat(counts, starts).astype(np.float64)
  discounts = np.zeros(3)
  if smoothing == 'kneser_ney':
    discounts = _kn_discounts(counts)
    d = np.concatenate([[0.0], discounts])[np.minimum(counts, 3)]
    alpha = (counts - d) / total[group]
    gamma = np.add.reduceat(d, starts) / total
  elif smoothing == 'interpolated':
    types = np.diff(np.append(starts, len(keys))).astype(np.float64)
    alpha = counts / (total + types)[group]
    gamma = types / (total + types)
  else:  # add_one, order 1: (c + 1) / (N + V) = c / (N + V) + V / (N + V) * 1 / V
    alpha = counts / float(total_tokens + vocab_size)
    gamma = np.array([vocab_size / float(total_tokens + vocab_size)])
  return ctx_keys, gamma, alpha, discounts


def fit(train_ids, order: int, vocab_size: int, smoothing: str = 'kneser_ney') -> NGramModel:
  """Fits an n-gram model of `order` (1 = unigram) to token ids in [0, vocab_size).

  train_ids: a 1-D int array, or a list of them = separate documents (n-grams never cross
  documents; each document's start is padded with BOS = vocab_size, never predicted).

  smoothing:
    'kneser_ney': interpolated modified Kneser-Ney (Chen & Goodman 1999, Sec. 3):
        p(w|h) = (c(hw) - D(c(hw))) / c(h.) + gamma(h) p(w|h'),
        gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h.),
      with three discounts per level from its count-of-counts (see `_kn_discounts`); lower
      levels use continuation counts N1+(. h w) in place of c(h w) (Kneser & Ney 1995), except
      that k-grams starting with BOS keep raw counts as in KenLM (Heafield et al. 2013), and
      the unigram level interpolates with the uniform 1 / vocab_size.
    'interpolated': interpolated Witten-Bell (Chen & Goodman 1999, Sec. 2):
        p(w|h) = (c(hw) + N1+(h.) p(w|h')) / (c(h.) + N1+(h.)), down to the uniform.
    'add_one': Laplace unigram (order 1 only): p(w) = (c(w) + 1) / (N + vocab_size).
  Contexts unseen in training pass their whole mass to the level below.
  """
  order, vocab_size = _check_order(order, vocab_size)
  if smoothing not in SMOOTHINGS:
    raise UserError(f'smoothing={smoothing!r} is not known: use one of {list(SMOOTHINGS)}.')
  if smoothing == 'add_one' and order != 1:
    raise UserError(f"smoothing='add_one' is a unigram baseline: use order=1, or 'kneser_ney' "
                    f"or 'interpolated' for order={order}.")
  docs = _as_docs(train_ids, vocab_size, 'train_ids')
  if not docs:
    raise UserError('train_ids holds no tokens: pass at least one non-empty document.')
  base = vocab_size + 1
  keys, raw = np.unique(_position_keys(docs, order, base), return_counts=True)
  levels = [None] * order  # (keys, counts) of level k at index k - 1, filled top down
  levels[order - 1] = (keys, raw)
  for k in range(order - 1, 0, -1):  # level k from the distinct (k+1)-grams
    suffix, inverse = np.unique(keys % base**k, return_inverse=True)
    raw = np.bincount(inverse, weights=raw, minlength=len(suffix)).astype(np.int64)
    counts = raw
    if smoothing == 'kneser_ney':
      continuation = np.bincount(inverse, minlength=len(suffix)).astype(np.int64)
      counts = np.where(suffix // base**(k - 1) == vocab_size, raw, continuation)
    keys = suffix
    levels[k - 1] = (keys, counts)
  total_tokens = sum(len(d) for d in docs)
  tables = [_level_weights(k, c, smoothing, base, vocab_size, total_tokens) for k, c in levels]
  return NGramModel(
      order=order, vocab_size=vocab_size, smoothing=smoothing,
      ngram_keys=tuple(k for k, _ in levels), ngram_counts=tuple(c for _, c in levels),
      ngram_weights=tuple(t[2] for t in tables), context_keys=tuple(t[0] for t in tables),
      context_weights=tuple(t[1] for t in tables),
      discounts=np.stack([t[3] for t in tables]))


# ---------------------------------------------------------------------------------- scoring


def _probs(model: NGramModel, keys: np.ndarray) -> np.ndarray:
  """p(token | context) for full-order keys: p_k = alpha_k + gamma_k p_{k-1} up the levels."""
  base = model.vocab_size + 1
  p = np.full(len(keys), 1.0 / model.vocab_size)
  for k in range(1, model.order + 1):
    q = keys % base**k if k < model.order else keys
    gamma = _lookup(model.context_keys[k - 1], model.context_weights[k - 1], q // base, 1.0)
    alpha = _lookup(model.ngram_keys[k - 1], model.ngram_weights[k - 1], q, 0.0)
    p = alpha + gamma * p
  return p


def log2_probs(model: NGramModel, ids) -> np.ndarray:
  """log2 p(x_t | previous order - 1 tokens of the same document, BOS-padded), every token.

  ids: a 1-D int array or a list of them (documents); the result concatenates the documents.
  """
  docs = _as_docs(ids, model.vocab_size, 'ids')
  if not docs:
    return np.zeros(0)
  return np.log2(_probs(model, _position_keys(docs, model.order, model.vocab_size + 1)))


def bits_per_token(model: NGramModel, ids) -> float:
  """Cross-entropy in bits per token, -mean(log2_probs): comparable to an LSTM's."""
  lp = log2_probs(model, ids)
  if lp.size == 0:
    raise UserError('bits_per_token got no tokens: pass at least one non-empty document.')
  return float(-lp.mean())


def distribution(model: NGramModel, context) -> np.ndarray:
  """The next-token distribution (vocab_size,) after `context` (1-D ids, possibly empty).

  Only the last order - 1 tokens matter; a shorter context is a document start and is
  BOS-padded, exactly as `log2_probs` scores a document's first tokens.
  """
  docs = _as_docs(np.asarray(context), model.vocab_size, 'context')
  ctx = docs[0] if docs else np.zeros(0, np.int64)
  base, width = model.vocab_size + 1, model.order - 1
  ctx = ctx[max(0, len(ctx) - width):] if width else ctx[:0]
  ctx_key = 0
  for s in [model.vocab_size] * (width - len(ctx)) + [int(s) for s in ctx]:
    ctx_key = ctx_key * base + s
  return _probs(model, ctx_key * base + np.arange(model.vocab_size, dtype=np.int64))


def best_of(train_ids, eval_ids, vocab_size: int, orders=(1, 2, 3, 4, 5, 6),
            smoothings=('kneser_ney', 'interpolated')) -> list[dict]:
  """Fits every (order, smoothing) pair, plus add_one at order 1, and scores each on eval_ids.

  -> rows {'order', 'smoothing', 'bits_per_token', 'num_ngrams'} in fitting order (orders
  outer, smoothings inner). Pick the best row on validation data, then report that setting
  on test data: choosing it on test would flatter the baseline.
  """
  for s in smoothings:
    if s not in SMOOTHINGS:
      raise UserError(f'smoothing={s!r} is not known: use some of {list(SMOOTHINGS)}.')
  rows = []
  for order in orders:
    names = [s for s in smoothings if s != 'add_one']
    if order == 1:
      names.append('add_one')
    for s in names:
      model = fit(train_ids, order, vocab_size, s)
      rows.append({'order': model.order, 'smoothing': s,
                   'bits_per_token': bits_per_token(model, eval_ids),
                   'num_ngrams': model.num_ngrams})
  return rows
