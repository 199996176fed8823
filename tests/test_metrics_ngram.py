"""Tests for genlab/metrics/ngram.py: Kneser-Ney, Witten-Bell and add-one n-gram baselines."""
import collections
import math

import numpy as np
import pytest

from genlab.errors import UserError
from genlab.metrics import ngram

_FALLBACK = (0.5, 1.0, 1.5)


def _markov_docs(rng, vocab, lengths, order=2, concentration=0.3):
  """Documents from a random sparse Markov chain of `order` over ids [0, vocab)."""
  table = rng.dirichlet(np.full(vocab, concentration), size=(vocab,) * order)
  docs = []
  for n in lengths:
    doc = list(rng.randint(0, vocab, order))
    while len(doc) < n:
      doc.append(rng.choice(vocab, p=table[tuple(doc[-order:])]))
    docs.append(np.array(doc[:n]))
  return docs


# ------------------------------------------------------- dict-based reference implementations


class _Reference:
  """Straight-from-the-paper n-gram models on Python dicts of tuples, one token at a time.

  'kneser_ney': interpolated modified Kneser-Ney (Chen & Goodman 1999, Sec. 3) with KenLM's
  adjusted counts (continuation counts below the top order, raw counts for n-grams starting
  with BOS) and discount fallback; 'interpolated': Witten-Bell. Both bottom out at 1/V.
  """

  def __init__(self, docs, order, vocab, smoothing):
    self.order, self.vocab, self.bos, self.smoothing = order, vocab, vocab, smoothing
    raw = {k: collections.Counter() for k in range(1, order + 1)}
    for doc in docs:
      padded = [self.bos] * (order - 1) + [int(t) for t in doc]
      for t in range(order - 1, len(padded)):
        for k in range(1, order + 1):
          raw[k][tuple(padded[t - k + 1:t + 1])] += 1
    self.counts = {order: dict(raw[order])}
    for k in range(order - 1, 0, -1):
      left = collections.defaultdict(set)
      for gram in raw[k + 1]:
        left[gram[1:]].add(gram[0])
      if smoothing == 'kneser_ney':
        self.counts[k] = {g: c if g[0] == self.bos else len(left[g]) for g, c in raw[k].items()}
      else:
        self.counts[k] = dict(raw[k])
    self.discounts = {}
    for k in range(1, order + 1):
      n = [sum(c == i for c in self.counts[k].values()) for i in (1, 2, 3, 4)]
      d = _FALLBACK
      if min(n) > 0:
        y = n[0] / (n[0] + 2 * n[1])
        d = (1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2])
        d = d if min(d) > 0 else _FALLBACK
      self.discounts[k] = d

  def prob(self, history, w):
    """p(w | the last order - 1 symbols of history), history already BOS-padded."""
    return self._p(self.order, tuple(history[len(history) - self.order + 1:]) if
                   self.order > 1 else (), w)

  def _p(self, k, h, w):
    if k == 0:
      return 1.0 / self.vocab
    lower = self._p(k - 1, h[1:], w)
    followers = {g[-1]: c for g, c in self.counts[k].items() if g[:-1] == h}
    if not followers:
      return lower
    total, c = sum(followers.values()), followers.get(w, 0)
    if self.smoothing == 'interpolated':
      return (c + len(followers) * lower) / (total + len(followers))
    d = self.discounts[k]
    disc = lambda x: 0.0 if x == 0 else d[min(x, 3) - 1]
    gamma = sum(disc(x) for x in followers.values()) / total
    return (c - disc(c)) / total + gamma * lower

  def log2_probs(self, docs):
    out = []
    for doc in docs:
      padded = [self.bos] * (self.order - 1) + [int(t) for t in doc]
      for t in range(self.order - 1, len(padded)):
        out.append(math.log2(self.prob(padded[:t], padded[t])))
    return np.array(out)


@pytest.mark.parametrize('smoothing', ['kneser_ney', 'interpolated'])
@pytest.mark.parametrize('order', [1, 2, 3])
def test_matches_a_dict_based_reference_implementation(smoothing, order):
  rng = np.random.RandomState(10 + order)
  vocab = 14
  train = _markov_docs(rng, vocab - 2, [150, 90, 60], order=1, concentration=0.15)
  train += [train[0][:4], train[0][:9]]  # Three documents open alike: raw != continuation.
  heldout = _markov_docs(rng, vocab, [40, 25])  # Has ids and n-grams never seen in training.
  model = ngram.fit(train, order, vocab, smoothing)
  ref = _Reference(train, order, vocab, smoothing)
  np.testing.assert_allclose(ngram.log2_probs(model, heldout),
                             ref.log2_probs(heldout), rtol=0, atol=1e-9)
  np.testing.assert_allclose(ngram.log2_probs(model, train), ref.log2_probs(train), atol=1e-9)
  if smoothing == 'kneser_ney':
    expected = np.array([ref.discounts[k] for k in range(1, order + 1)])
    np.testing.assert_allclose(model.discounts, expected, rtol=1e-12)
    if order == 3:  # The count-of-counts formula, not only the fallback, is exercised.
      assert sum(tuple(d) != _FALLBACK for d in ref.discounts.values()) >= 2


def test_kneser_ney_uses_continuation_counts_below_the_top_order():
  # "b" follows many different symbols, "z" (id 5) only ever follows "a": KN's unigram level
  # ranks "b" above "z" although z is the more frequent symbol.
  a, b, z = 0, 1, 5
  doc = [a, z] * 30 + [2, b, 3, b, 4, b, a, b]
  model = ngram.fit(np.array(doc), 2, 6)
  unigram = dict(zip(model.ngram_keys[0].tolist(), model.ngram_counts[0].tolist()))
  assert unigram[z] == 1 and unigram[b] == 4
  top = dict(zip(model.ngram_keys[1].tolist(), model.ngram_counts[1].tolist()))
  assert top[a * 7 + z] == 30  # Raw counts at the top order.
  unseen_context = ngram.distribution(model, np.array([2]))  # "2" is followed only by b.
  after_b = ngram.distribution(model, np.array([b]))
  assert after_b[b] > after_b[z] and unseen_context[b] > unseen_context[z]


# ------------------------------------------------------------------ normalization and scoring


@pytest.mark.parametrize('smoothing,order', [('add_one', 1)] + [
    (s, k) for s in ('kneser_ney', 'interpolated') for k in (1, 2, 3, 4)])
def test_distribution_sums_to_one_with_unseen_contexts_and_vocabulary(smoothing, order):
  rng = np.random.RandomState(order)
  vocab = 12
  train = _markov_docs(rng, 8, [200, 120])  # Ids 8..11 never occur in training.
  model = ngram.fit(train, order, vocab, smoothing)
  contexts = [np.zeros(0, np.int64), train[0][:1], train[0][:7], train[1][-5:],
              np.array([9, 10, 11]), np.array([11, 0]), rng.randint(0, vocab, 6)]
  contexts += [rng.randint(0, vocab, rng.randint(0, 6)) for _ in range(10)]
  for ctx in contexts:
    p = ngram.distribution(model, ctx)
    assert p.shape == (vocab,) and np.all(p > 0)
    assert abs(p.sum() - 1.0) < 1e-9


@pytest.mark.parametrize('smoothing', ['kneser_ney', 'interpolated'])
@pytest.mark.parametrize('order', [1, 2, 3, 4])
def test_log2_probs_agree_with_the_distribution_token_by_token(smoothing, order):
  rng = np.random.RandomState(20 + order)
  train = _markov_docs(rng, 7, [150, 80])
  test = _markov_docs(rng, 9, [30, 1, 12])
  model = ngram.fit(train, order, 9, smoothing)
  expected = [np.log2(ngram.distribution(model, doc[:t])[doc[t]])
              for doc in test for t in range(len(doc))]
  got = ngram.log2_probs(model, test)
  assert got.shape == (43,)
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
  assert ngram.bits_per_token(model, test) == pytest.approx(-np.mean(expected))


def test_distribution_uses_only_the_last_order_minus_one_tokens_and_pads_a_short_context():
  rng = np.random.RandomState(3)
  train = _markov_docs(rng, 6, [300])
  model = ngram.fit(train, 3, 6)
  np.testing.assert_array_equal(ngram.distribution(model, np.array([4, 0, 2, 1, 3])),
                                ngram.distribution(model, np.array([1, 3])))
  # One token of context = a document's second token: scored the same way by log2_probs.
  doc = np.array([2, 5])
  np.testing.assert_allclose(ngram.log2_probs(model, doc)[1],
                             np.log2(ngram.distribution(model, doc[:1])[5]))


def test_add_one_unigram_is_laplace():
  train = [np.array([0, 0, 1, 3, 3, 3]), np.array([1, 0])]
  model = ngram.fit(train, 1, 6, 'add_one')
  counts = np.array([3, 2, 0, 3, 0, 0])
  np.testing.assert_allclose(ngram.distribution(model, np.array([1, 2])), (counts + 1) / 14,
                             rtol=1e-13)
  np.testing.assert_allclose(ngram.log2_probs(model, np.array([4, 0])),
                             np.log2(np.array([1, 4]) / 14), rtol=1e-13)


def test_documents_are_separate():
  first, second = np.array([0, 1, 2, 1, 2]), np.array([3, 4, 3, 4])
  base = 6
  split = ngram.fit([first, second], 2, 5)
  joined = ngram.fit(np.concatenate([first, second]), 2, 5)
  cross = 2 * base + 3  # The bigram (2, 3) exists only across the boundary.
  assert cross not in split.ngram_keys[1] and cross in joined.ngram_keys[1]
  assert 5 * base + 3 in split.ngram_keys[1]  # (BOS, 3): the second document's start.
  assert ngram.distribution(split, np.array([2]))[3] < ngram.distribution(joined,
                                                                          np.array([2]))[3]
  # Scoring: each document starts from BOS again.
  np.testing.assert_allclose(ngram.log2_probs(split, [first, second]),
                             np.concatenate([ngram.log2_probs(split, first),
                                             ngram.log2_probs(split, second)]))


def test_held_out_bits_fall_with_order_on_structured_text():
  rng = np.random.RandomState(0)
  vocab, motif = 20, rng.randint(0, 20, 40)

  def noisy_repeats(n_repeats):
    text = np.tile(motif, n_repeats)
    flip = rng.rand(len(text)) < 0.03
    text[flip] = rng.randint(0, vocab, flip.sum())
    return text

  train, heldout = noisy_repeats(50), noisy_repeats(10)
  for smoothing in ('kneser_ney', 'interpolated'):
    bits = [ngram.bits_per_token(ngram.fit(train, k, vocab, smoothing), heldout)
            for k in (1, 2, 3, 4)]
    assert np.all(np.diff(bits) < 0), (smoothing, bits)
  unigram = ngram.bits_per_token(ngram.fit(train, 1, vocab, 'add_one'), heldout)
  kn = ngram.bits_per_token(ngram.fit(train, 4, vocab), heldout)
  assert kn < 0.5 * unigram


def test_best_of_fits_every_pair_plus_add_one_in_order():
  rng = np.random.RandomState(4)
  *train, valid = _markov_docs(rng, 10, [400, 200, 150])  # One chain: valid is in-domain.
  rows = ngram.best_of(train, valid, 10, orders=(1, 2, 3))
  assert [(r['order'], r['smoothing']) for r in rows] == [
      (1, 'kneser_ney'), (1, 'interpolated'), (1, 'add_one'), (2, 'kneser_ney'),
      (2, 'interpolated'), (3, 'kneser_ney'), (3, 'interpolated')]
  for r in rows:
    model = ngram.fit(train, r['order'], 10, r['smoothing'])
    assert r['bits_per_token'] == pytest.approx(ngram.bits_per_token(model, valid))
    assert r['num_ngrams'] == model.num_ngrams > 0
  assert rows[3]['bits_per_token'] < rows[0]['bits_per_token']


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize('kwargs,match', [
    (dict(order=0), 'order=0'),
    (dict(order=2.0), 'order=2.0'),
    (dict(smoothing='good_turing'), 'kneser_ney'),
    (dict(smoothing='add_one', order=2), 'order=1'),
    (dict(train_ids=np.array([0, 1, 5])), r'outside \[0, vocab_size=5\)'),
    (dict(train_ids=[np.array([0, 1]), np.array([-1, 2])]), r'train_ids\[1\]'),
    (dict(train_ids=np.zeros(0, np.int64)), 'no tokens'),
    (dict(train_ids=[]), 'no tokens'),
    (dict(train_ids=np.array([0.0, 1.0])), 'integers'),
    (dict(train_ids=np.zeros((2, 3), np.int64)), 'list of 1-D arrays'),
    (dict(vocab_size=0), 'vocab_size'),
    (dict(vocab_size=10000, order=5), 'largest possible order is 4'),
])
def test_fit_rejects_bad_input_with_a_user_error(kwargs, match):
  args = dict(train_ids=np.array([0, 1, 2, 3, 4, 1]), order=2, vocab_size=5)
  args.update(kwargs)
  with pytest.raises(UserError, match=match):
    ngram.fit(**args)


def test_scoring_rejects_bad_ids_and_empty_input():
  model = ngram.fit(np.array([0, 1, 2, 1]), 2, 4)
  with pytest.raises(UserError, match='outside'):
    ngram.log2_probs(model, np.array([0, 4]))
  with pytest.raises(UserError, match='outside'):
    ngram.distribution(model, np.array([7]))
  with pytest.raises(UserError, match='no tokens'):
    ngram.bits_per_token(model, [np.zeros(0, np.int64)])
  with pytest.raises(UserError, match='not known'):
    ngram.best_of(np.array([0, 1]), np.array([1]), 4, orders=(1,), smoothings=('katz',))
