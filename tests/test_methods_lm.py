"""The language-model method: sampling filters, the scan generator, TBPTT, learning, bits."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import assert_one_line_error, run_cli
from genlab import config_defaults
from genlab import data as data_lib
from genlab.data import text
from genlab.errors import UserError
from genlab.methods import lm
from genlab.models import lstm as lstm_models

_TEXT = 'abcabdabcabd\n' * 200


@pytest.fixture
def corpus(tmp_path):
  path = tmp_path / 'corpus.txt'
  path.write_text(_TEXT)
  data_lib.clear_cache()
  yield str(path)
  data_lib.clear_cache()


def _config(path, **overrides):
  c = config_defaults.lm_config()
  config_defaults.lm_smoke(c)
  c.dataset = f'text:{path}'
  c.data.split_by = 'fraction'
  c.data.held_out_fraction = 0.1
  c.optimizer.learning_rate = 1e-2
  for key, value in overrides.items():
    section, _, name = key.rpartition('.')
    (c[section] if section else c)[name] = value
  return c


def _method(c):
  info = data_lib.get_info(c)
  return lm.make(c, info), info


def _trained(c, steps):
  """(method, data info, state, losses) after `steps` train steps of config `c`."""
  method, info = _method(c)
  state = jax.jit(method.init)(jax.random.key(0))
  batches = data_lib.train_iterator(c)
  step = jax.jit(method.train_step)
  losses = []
  for i in range(steps):
    state, metrics = step(state, next(batches), jax.random.key(i))
    losses.append(float(metrics['loss']))
  return method, info, state, losses


def test_filter_logits_top_k_and_nucleus_against_brute_force():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(3, 20)) * 2, jnp.float32)
  for top_k, top_p in ((5, 1.0), (0, 0.6), (3, 0.3), (0, 1.0)):
    out = np.asarray(lm.filter_logits(logits, 0.5, top_k, top_p))
    for row, kept in zip(np.asarray(logits), np.isfinite(out)):
      order = np.argsort(-row)
      allowed = set(order[:top_k] if top_k else order)
      probs = np.exp(row / 0.5 - np.max(row / 0.5))
      probs /= probs.sum()
      cum, nucleus = 0.0, set()
      for i in order:
        nucleus.add(i)
        cum += probs[i]
        if top_p < 1 and cum >= top_p:
          break
      assert set(np.flatnonzero(kept)) == allowed & nucleus
    np.testing.assert_allclose(out[np.isfinite(out)],
                               np.asarray(logits)[np.isfinite(out)] / 0.5, rtol=1e-6)


def test_every_time_loop_is_the_same_function_with_the_same_gradients():
  """'scan', 'hoisted' (input projections before the scan) and 'unrolled' share parameters,
  initial values, outputs, carries and parameter gradients."""
  kwargs = dict(vocab_size=11, embed_dim=6, hidden_dim=8, num_layers=2)
  models = {loop: lstm_models.LSTMLanguageModel(**kwargs, unroll=3, time_loop=loop)
            for loop in lstm_models.TIME_LOOPS}
  tokens = jax.random.randint(jax.random.key(0), (2, 7), 0, 11)
  params = models['scan'].init(jax.random.key(1), tokens)
  hoisted_init = models['hoisted'].init(jax.random.key(1), tokens)
  jax.tree.map(np.testing.assert_array_equal, params, hoisted_init)

  # A non-zero initial carry, and a loss on both parts of the final one, so that every input
  # and output of the recurrence has a gradient ('hoisted' writes its backward pass by hand).
  start = jax.tree.map(lambda z: 0.5 * jax.random.normal(jax.random.key(2), z.shape),
                       models['scan'].zero_carry(2))

  def loss(p, start, model):
    logits, carry = model.apply(p, tokens, start)
    return (jnp.mean(logits ** 2) + sum(jnp.mean(h) + jnp.mean(c ** 2) for c, h in carry),
            (logits, carry))

  grad_fn = jax.grad(loss, argnums=(0, 1), has_aux=True)
  ref_grad, (ref, ref_carry) = grad_fn(params, start, models['scan'])
  for loop in ('hoisted', 'unrolled'):
    grad, (out, carry) = grad_fn(params, start, models[loop])
    np.testing.assert_allclose(out, ref, atol=1e-5)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-5), carry, ref_carry)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), grad,
                 ref_grad)
  ref = models['scan'].apply(params, tokens)[0]
  # Reading a sequence in two pieces with the carry equals reading it at once.
  for loop in ('scan', 'hoisted'):
    first, carry = models[loop].apply(params, tokens[:, :4])
    second, _ = models[loop].apply(params, tokens[:, 4:], carry)
    np.testing.assert_allclose(np.concatenate([first, second], 1), ref, atol=1e-5)


def test_tied_weights_use_the_embedding_as_output_layer():
  model = lstm_models.LSTMLanguageModel(vocab_size=9, embed_dim=4, hidden_dim=6, num_layers=1,
                                        tie_weights=True)
  params = model.init(jax.random.key(0), jnp.zeros((1, 3), jnp.int32))['params']
  assert 'output' not in params and set(params) == {'embed', 'lstm_0', 'project',
                                                     'output_bias'}


def test_training_learns_the_text_and_eval_is_per_token(corpus):
  c = _config(corpus, num_train_steps=60)
  method, info, state, losses = _trained(c, 60)
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
  # The eval sums, summarised, equal the mean NLL of every scored validation token.
  totals = None
  for batch in data_lib.eval_batches(c, 'validation', 64):
    sums = method.eval_step(state, batch, None)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  metrics = method.summarize({'nll': float(totals['nll']) / float(totals['_count'])})
  ids = data_lib.split_arrays(c, 'eval')['ids']
  assert float(totals['_count']) == len(ids) - 1
  logits, _ = method_apply(state, c, info, ids[None, :-1])
  nll = optax.softmax_cross_entropy_with_integer_labels(logits[0], ids[1:]).mean()
  # Windows start from a zero state after 64 tokens of context: nearly the one-pass NLL.
  assert abs(metrics['nll'] - float(nll)) < 0.02
  assert metrics['bits_per_char'] == pytest.approx(metrics['nll'] / math.log(2))
  assert metrics['perplexity'] == pytest.approx(math.exp(metrics['nll']))
  # A period-13 text: the trained model is far below the unigram's bits.
  assert metrics['bits_per_token'] < 1.0


def method_apply(state, c, info, tokens):
  model = lm.build_model(c, info)
  return model.apply({'params': state.params}, jnp.asarray(tokens))


def test_tbptt_carries_the_state_and_resets_it(corpus):
  c = _config(corpus, **{'data.tbptt': True})
  method, _ = _method(c)
  state = method.init(jax.random.key(0))
  assert all(float(jnp.abs(x).sum()) == 0 for x in jax.tree.leaves(state.carry))
  batch = data_lib.train_iterator(c).dataset[1]
  assert (batch['reset'] == 0).all()
  state, _ = method.train_step(state, batch, jax.random.key(0))
  carried = state.carry
  assert all(float(jnp.abs(x).sum()) > 0 for x in jax.tree.leaves(carried))
  # With reset, the step starts from zero: the same as a fresh state's step.
  fresh = state.replace(carry=jax.tree.map(jnp.zeros_like, carried))
  reset = dict(batch, reset=np.ones_like(batch['reset']))
  _, m_reset = method.train_step(state, reset, jax.random.key(1))
  _, m_fresh = method.train_step(fresh, batch, jax.random.key(1))
  _, m_carry = method.train_step(state, batch, jax.random.key(1))
  assert float(m_reset['loss']) == pytest.approx(float(m_fresh['loss']), abs=1e-6)
  assert float(m_reset['loss']) != pytest.approx(float(m_carry['loss']), abs=1e-6)


def test_generation_is_reproducible_and_follows_the_text(corpus):
  method, _, state, _ = _trained(_config(corpus, num_train_steps=80), 80)
  key = jax.random.key(3)
  a = method.generate_text(state, key, 3, prompt='abcab', temperature=0.2, length=26)
  assert a == method.generate_text(state, key, 3, prompt='abcab', temperature=0.2, length=26)
  assert all(t.startswith('abcab') and len(t) == 5 + 26 for t in a)
  # At a low temperature nearly every generated trigram is one of the text's; hot, far fewer.
  def text_trigrams(samples):
    return np.mean([t[i:i + 3] in _TEXT for t in samples for i in range(len(t) - 2)])
  hot = method.generate_text(state, key, 3, prompt='abcab', temperature=5.0, length=26)
  assert text_trigrams(a) > 0.9 > 0.7 > text_trigrams(hot)
  greedy_k = method.generate_text(state, key, 2, prompt='abcab', temperature=1.0, length=10,
                                  top_k=1)
  assert greedy_k[0] == greedy_k[1]  # top-1 is greedy: the same for every sample
  with pytest.raises(UserError, match='temperature > 0'):
    method.generate_text(state, key, 1, prompt='a', temperature=0.0)
  with pytest.raises(UserError, match='top_p'):
    method.generate_text(state, key, 1, prompt='a', top_p=1.5)


def test_ngram_baselines_pick_the_best_on_validation(corpus):
  c = _config(corpus)
  info = data_lib.get_info(c)
  out = lm.ngram_baselines(lambda role: data_lib.split_arrays(c, role), info.vocab_size,
                           (1, 2, 3))
  assert out['baseline/best/order'] == 3
  assert out['baseline/best/bits_per_token'] < 0.5 * out['baseline/add_one_1/bits_per_token']
  assert out['baseline/best/perplexity'] == pytest.approx(
      2 ** out['baseline/best/bits_per_token'])


def test_lm_on_an_image_data_set_is_a_clear_error():
  c = config_defaults.autoencoder_config()
  c.method = 'lm'
  with pytest.raises(UserError, match='needs a text data set'):
    lm.make(c, data_lib.get_info(c))


def test_word_model_reports_perplexity(corpus):
  c = _config(corpus, **{'data.tokenizer': 'word'})
  method, info = _method(c)
  assert info.tokenizer.kind == 'word'
  metrics = method.summarize({'nll': 2.0})
  assert metrics['perplexity'] == pytest.approx(math.exp(2.0)) and 'bits_per_char' not in metrics
  assert text.Tokenizer.build('word', [_TEXT]).vocab_size == info.vocab_size


def test_cli_sample_and_bad_input(tmp_path, corpus):
  """Through run.py: sampling with a prompt, and each bad input as one line with exit 2."""
  workdir = str(tmp_path / 'char')
  data = f'--config.dataset=text:{corpus}'
  split = ['--config.data.split_by=fraction', '--config.data.held_out_fraction=0.1']
  run_cli('--config', 'configs/lstm_char_shakespeare.py:smoke', data, *split,
          f'--workdir={workdir}', check=True)
  out = str(tmp_path / 's.npz')
  proc = run_cli('--config', 'configs/lstm_char_shakespeare.py:smoke', data, *split,
                 f'--workdir={workdir}', '--mode=sample', '--num_samples=2', '--prompt=abé',
                 '--temperature=0.5', '--length=12', f'--output={out}', check=True)
  assert "outside the vocabulary" in proc.stderr and "'é'" in proc.stderr
  saved = np.load(out)
  assert len(saved['samples']) == 2 and all(len(t) >= 7 + 12 for t in saved['samples'])
  assert all(t.startswith('ab<unk>') for t in saved['samples'])
  assert float(saved['temperature']) == 0.5 and str(saved['prompt']) == 'abé'
  assert (tmp_path / 's.txt').read_text().count('=== sample') == 2
  proc = run_cli('--config', 'configs/lstm_char_shakespeare.py:smoke', data, *split,
                 f'--workdir={workdir}', '--mode=sample', '--temperature=0')
  assert_one_line_error(proc, 'temperature > 0')
  proc = run_cli('--config', 'configs/lstm_word_shakespeare.py:smoke', data, *split,
                 f'--workdir={workdir}', '--mode=sample')
  assert_one_line_error(proc, 'character-level', 'word-level')
  empty = tmp_path / 'empty.txt'
  empty.write_text('\n')
  proc = run_cli('--config', 'configs/lstm_char_shakespeare.py:smoke',
                 f'--config.dataset=text:{empty}', f'--workdir={tmp_path / "e"}')
  assert_one_line_error(proc, 'empty')
  assert not (tmp_path / 'e' / 'checkpoints').exists()


def test_resume_with_the_carried_state_is_bit_identical(tmp_path, corpus):
  """Through the trainer: the TBPTT carry and the window position come back with the state."""
  import shutil  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  c = _config(corpus, **{'data.tbptt': True, 'model.dropout': 0.2})  # dropout draws resume too
  whole = str(tmp_path / 'whole')
  train.train_and_evaluate(c, whole)
  partial = str(tmp_path / 'partial')
  shutil.copytree(whole, partial)
  shutil.rmtree(tmp_path / 'partial' / 'checkpoints' / '20')
  train.train_and_evaluate(c, partial)
  a, b = (train.restore(c, w)[1] for w in (whole, partial))
  for x, y in zip(jax.tree.leaves((a.params, a.carry)), jax.tree.leaves((b.params, b.carry))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  assert any(float(jnp.abs(x).sum()) > 0 for x in jax.tree.leaves(a.carry))


def test_tiny_shakespeare_trains_under_tfds_mocking(data_dir, tmp_path):
  """The TFDS catalogue name works where present: the real reading code on mocked examples."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from configs import lstm_char_shakespeare  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  c = lstm_char_shakespeare.get_config('smoke')
  c.dataset = 'tiny_shakespeare'
  data_lib.clear_cache()
  try:
    with tfds.testing.mock_data(num_examples=20):
      results = train.train_and_evaluate(c, str(tmp_path / 'tiny'))
  finally:
    data_lib.clear_cache()
  assert results['dataset'] == 'tiny_shakespeare' and results['step'] == c.num_train_steps
  assert results['metrics']['bits_per_char'] > 0


def test_generation_suppresses_unk_unless_asked(corpus):
  for suppress in (True, False):
    c = _config(corpus, **{'sample.suppress_unk': suppress})
    method, _ = _method(c)
    state = method.init(jax.random.key(0))  # untrained: every token about equally likely
    texts = method.generate_text(state, jax.random.key(1), 4, prompt='ab', temperature=5.0,
                                 length=60)
    assert ('<unk>' in ''.join(texts)) != suppress
