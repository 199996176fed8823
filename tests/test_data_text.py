"""Tokenizers, token windows (random and truncated-BPTT), evaluation windows, text errors."""
import json
import os

import ml_collections
import numpy as np
import pytest

from genlab import config_defaults
from genlab import data as data_lib
from genlab.data import text
from genlab.errors import UserError

_PLAY = ('ROMEO.\nBut, soft! what light through yonder window breaks?\n'
         "It is the east, and Juliet is the sun.\n\nJULIET.\nO Romeo, Romeo! wherefore art thou "
         "Romeo?\n'Tis but thy name that is my enemy.\n")


def _config(path, **data):
  c = config_defaults.lm_config()
  config_defaults.lm_smoke(c)
  c.dataset = f'text:{path}'
  c.data.split_by = 'fraction'
  c.data.held_out_fraction = 0.2
  for k, v in data.items():
    c.data[k] = v
  return c


@pytest.fixture
def corpus(tmp_path):
  path = tmp_path / 'corpus.txt'
  path.write_text(_PLAY * 40)
  data_lib.clear_cache()
  yield str(path)
  data_lib.clear_cache()


def test_char_tokenizer_round_trip_and_unknown():
  tok = text.Tokenizer.build('char', ['hello world'])
  assert tok.tokens[0] == text.UNK and list(tok.tokens[1:]) == sorted(set('hello world'))
  assert tok.decode(tok.encode('hello')) == 'hello'
  assert list(tok.encode('hat')) == [tok.tokens.index('h'), 0, 0]
  assert tok.unknown('hat!a') == ['a', 't', '!']
  assert text.Tokenizer.from_json(json.loads(json.dumps(tok.to_json()))) == tok


def test_word_tokenizer_pieces_vocabulary_and_detokenizing():
  tok = text.Tokenizer.build('word', [_PLAY], vocab_size=12)
  pieces = tok.pieces("O Romeo, Romeo!\n\n\n'Tis o'er.")  # a blank-line run is one token
  assert pieces == ['O', 'Romeo', ',', 'Romeo', '!', '\n\n', "'Tis", "o'er", '.']
  dashes = "name.--Blow, o'er (aside) 'gainst"
  assert text.Tokenizer.build('word', [dashes]).decode(
      text.Tokenizer.build('word', [dashes]).encode(dashes)) == dashes
  assert tok.vocab_size == 12 and tok.tokens[0] == text.UNK
  counts = {t: text.Tokenizer('word', (text.UNK,)).pieces(_PLAY).count(t) for t in tok.tokens[1:]}
  assert min(counts.values()) >= max(
      text.Tokenizer('word', (text.UNK,)).pieces(_PLAY).count(t)
      for t in set(text.Tokenizer('word', (text.UNK,)).pieces(_PLAY)) - set(tok.tokens))
  full = text.Tokenizer.build('word', [_PLAY])
  line = 'But, soft! what light through yonder window breaks?\nIt is the east.'
  assert full.decode(full.encode(line)) == line
  lower = text.Tokenizer.build('word', [_PLAY], lowercase=True)
  assert 'romeo' in lower.tokens and 'Romeo' not in lower.tokens
  assert lower.encode('ROMEO')[0] == lower.tokens.index('romeo')


def test_train_windows_are_next_token_pairs_and_split_over_processes(corpus):
  c = _config(corpus, tbptt=False, seq_len=12)
  c.batch_size = 4
  ids = data_lib.split_arrays(c, 'train')['ids']
  whole = data_lib.train_iterator(c).dataset
  halves = [data_lib.train_iterator(c, process_index=p, process_count=2).dataset
            for p in range(2)]
  for step in (0, 1, 57):
    batch = whole[step]
    assert batch['inputs'].shape == (4, 12) and batch['inputs'].dtype == np.int32
    np.testing.assert_array_equal(batch['inputs'][:, 1:], batch['targets'][:, :-1])
    for row_in, row_t in zip(batch['inputs'], batch['targets']):
      start = next(i for i in range(len(ids)) if (ids[i:i + 12] == row_in).all())
      np.testing.assert_array_equal(ids[start + 1:start + 13], row_t)
    np.testing.assert_array_equal(
        np.concatenate([h[step]['inputs'] for h in halves]), batch['inputs'])
  assert not np.array_equal(whole[0]['inputs'], whole[1]['inputs'])
  np.testing.assert_array_equal(data_lib.train_iterator(c).dataset[3]['inputs'],
                                whole[3]['inputs'])


def test_tbptt_rows_continue_across_steps_and_reset_each_epoch(corpus):
  c = _config(corpus, tbptt=True, seq_len=10)
  c.batch_size = 4
  ids = data_lib.split_arrays(c, 'train')['ids']
  batches = data_lib.train_iterator(c).dataset
  per_epoch = ((len(ids) - 10) // 4 - 1) // 10
  resets = [float(batches[s]['reset'][0]) for s in range(2 * per_epoch + 1)]
  assert resets == [1.0] + [0.0] * (per_epoch - 1) + [1.0] + [0.0] * (per_epoch - 1) + [1.0]
  for s in range(per_epoch - 1):  # within an epoch, each row goes on where it stopped
    a, b = batches[s], batches[s + 1]
    for r in range(4):
      start = next(i for i in range(len(ids)) if (ids[i:i + 10] == a['inputs'][r]).all())
      np.testing.assert_array_equal(ids[start + 10:start + 20], b['inputs'][r])
  covered = np.concatenate([batches[s]['inputs'].reshape(-1) for s in range(per_epoch)])
  assert len(covered) >= 0.8 * len(ids)  # an epoch reads (almost) the whole stream


def test_eval_windows_score_every_token_once_with_context():
  ids = np.arange(1, 48, dtype=np.int32)
  w = text.eval_windows(ids, seq_len=10, context=4)
  scored = w['targets'][w['weights'] > 0]
  np.testing.assert_array_equal(scored, ids[1:])
  assert w['inputs'].shape == (5, 14)
  # Every scored target's input is its predecessor, and the context before it is the stream.
  np.testing.assert_array_equal(w['inputs'][1], ids[6:20])
  np.testing.assert_array_equal(w['targets'][1][4:], ids[11:21])


def test_eval_batches_pad_to_full_batches_with_zero_weight(corpus):
  c = _config(corpus)
  c.eval.seq_len = 32
  batches = list(data_lib.eval_batches(c, 'validation', 8))
  n = len(data_lib.split_arrays(c, 'eval')['ids'])
  assert sum(b['weights'].sum() for b in batches) == n - 1
  last = batches[-1]
  assert (last['weights'][last['mask'] == 0] == 0).all()


def test_get_info_counts_tokens_and_carries_the_tokenizer(corpus):
  info = data_lib.get_info(_config(corpus))
  assert info.vocab_size == info.tokenizer.vocab_size == len(set(_PLAY)) + 1
  assert info.num_examples['train'] > 2 * info.num_examples['eval'] > 0


def test_short_and_empty_texts_are_clear_errors(tmp_path):
  short = tmp_path / 'short.txt'
  short.write_text('To be, or not to be.\n' * 2)
  data_lib.clear_cache()
  with pytest.raises(UserError, match='fewer than 33 .*seq_len'):
    data_lib.get_info(_config(short, seq_len=32, tbptt=False))
  with pytest.raises(UserError, match='fewer than 152 .*batch_size rows'):
    data_lib.get_info(_config(short, seq_len=16, tbptt=True))
  empty = tmp_path / 'empty.txt'
  empty.write_text('  \n')
  with pytest.raises(UserError, match='empty'):
    data_lib.get_info(_config(empty))
  data_lib.clear_cache()


def test_vocabulary_is_saved_and_a_word_config_on_a_char_workdir_stops(corpus, tmp_path):
  workdir = str(tmp_path / 'run')
  char = data_lib.get_info(_config(corpus))
  data_lib.save_vocabulary(char, workdir)
  data_lib.check_vocabulary(char, workdir)  # the same vocabulary passes
  word = data_lib.get_info(_config(corpus, tokenizer='word'))
  with pytest.raises(UserError, match='character-level model .* word-level'):
    data_lib.check_vocabulary(word, workdir)
  lower = data_lib.get_info(_config(corpus, lowercase=True))
  with pytest.raises(UserError, match='not the one'):
    data_lib.check_vocabulary(lower, workdir)
  with open(os.path.join(workdir, text.VOCAB_FILE)) as f:
    assert text.Tokenizer.from_json(json.load(f)) == char.tokenizer


def test_prompt_with_unknown_characters_is_mapped_and_reported(capsys):
  tok = text.Tokenizer.build('char', ['abc'])
  ids = text.encode_prompt(tok, 'abé')
  assert list(ids) == [1, 2, 0]
  assert "'é'" in capsys.readouterr().err
  with pytest.raises(UserError, match='empty'):
    text.encode_prompt(tok, '')


def test_is_text_only_for_configs_with_a_tokenizer():
  assert text.is_text(config_defaults.lm_config())
  assert not text.is_text(config_defaults.autoencoder_config())
  assert not text.is_text(ml_collections.ConfigDict({'dataset': 'x'}))
