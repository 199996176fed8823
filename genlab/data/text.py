"""Text for language models: tokenizers, token streams and the batches of token windows.

A text config has `config.data.tokenizer` ('char' or 'word'); the data layer's public
functions (get_info, train_iterator, eval_batches, split_arrays) send it here. Its data set is
a TFDS set with a 'text' feature (`shakespeare`, `tiny_shakespeare`, ...) or `text:PATH`, any
text file or folder of .txt files (text_sources.load_user_text). A split's documents are
joined with a blank line into one token stream.

Training batches are windows of T = config.data.seq_len tokens x_{t..t+T-1} with their
next-token targets x_{t+1..t+T}:
- config.data.tbptt = False: each window starts at a uniformly random position, drawn from
  (seed, step), and the LSTM starts every window from a zero state.
- config.data.tbptt = True (truncated backpropagation through time, Williams & Peng 1990;
  the PTB setup of Zaremba et al. 2014): the stream is cut into B equal rows (B = the global
  batch), row r of step s continues row r of step s - 1, and the method carries the LSTM state
  across steps. 'reset' is 1 where a row starts over (every epoch; each epoch shifts the cut by
  a random offset < T, so windows do not repeat exactly).
Global batch row r goes to process r // b, as for images, so the stream is the same for any
process count and resuming needs only the step.

Evaluation scores every token of a split but its first, once: window w scores the L =
config.eval.seq_len targets after input position w * L and first reads the C =
config.eval.context tokens before them without scoring, so the state it predicts from has seen
at least C tokens (the first window has no context: its padding has weight 0).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import re
import sys
from typing import Iterator

import numpy as np

from genlab import files
from genlab.data import batches as batches_lib
from genlab.data import builders
from genlab.data import source as source_lib
from genlab.data import text_sources
from genlab.errors import UserError, int_at_least, one_of

TOKENIZERS = ('char', 'word')
UNK = '<unk>'
USER_TEXT = 'text:'  # config.dataset = 'text:PATH' reads a user's own text
VOCAB_FILE = 'vocab.json'
_JOIN = '\n\n'  # between the documents of a split
_WINDOW_TAG, _OFFSET_TAG = 0x51ED270B, 0x2545F491  # separate random streams
# Words with their apostrophes (o'er, 'tis, 'gainst: an apostrophe opens a word only after a
# space), numbers, dashes, each other punctuation mark, and line breaks (a run of blank lines
# is one paragraph token), so generated text keeps its lines.
_WORD_PIECES = re.compile(r"\n\s*\n|\n|(?<!\w)'?[^\W\d_]+(?:'[^\W\d_]+)*|\d+|--+|[^\w\s]")
_NO_SPACE_BEFORE = set(",.;:!?)]}'") | {'\n', '\n\n', '--'}
_NO_SPACE_AFTER = set('([{') | {'\n', '\n\n', '--'}


# TFDS catalogue sets of text that genlab reads (beside the offline TEXT_BUILDERS).
CATALOGUE_TEXT = ('tiny_shakespeare',)


def is_text_dataset(name: str) -> bool:
  """Whether data set `name` holds text (`text:PATH`, an offline text builder, or a known
  catalogue text set), so that a method on images can refuse it by name."""
  base = name.split('/')[0].split(':')[0]
  return (name.startswith(USER_TEXT) or base in builders.TEXT_BUILDERS
          or base in CATALOGUE_TEXT)


def is_text(config) -> bool:
  """Whether `config` describes a language-model data set (it has config.data.tokenizer)."""
  data = config.get('data', None)
  return data is not None and data.get('tokenizer', None) is not None


# -- tokenizers --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """Maps text to ids and back. Id 0 is UNK, which every unknown character or word maps to."""
  kind: str                 # 'char' | 'word'
  tokens: tuple[str, ...]   # id -> token; tokens[0] == UNK
  lowercase: bool = False

  def __post_init__(self):
    object.__setattr__(self, '_ids', {t: i for i, t in enumerate(self.tokens)})

  @property
  def vocab_size(self) -> int:
    return len(self.tokens)

  def pieces(self, text: str) -> list[str]:
    """The text cut into tokens (characters, or words/punctuation/line breaks), unmapped."""
    text = text.lower() if self.lowercase else text
    if self.kind == 'char':
      return list(text)
    return [p if p[0] != '\n' or len(p) == 1 else _JOIN for p in _WORD_PIECES.findall(text)]

  def encode(self, text: str) -> np.ndarray:
    return np.fromiter((self._ids.get(p, 0) for p in self.pieces(text)), np.int32)

  def unknown(self, text: str) -> list[str]:
    """The distinct pieces of `text` outside the vocabulary, in order of appearance."""
    return list(dict.fromkeys(p for p in self.pieces(text) if p not in self._ids))

  def decode(self, ids) -> str:
    pieces = [self.tokens[int(i)] for i in np.asarray(ids).reshape(-1)]
    if self.kind == 'char':
      return ''.join(pieces)
    out = []
    for i, p in enumerate(pieces):
      if i and p not in _NO_SPACE_BEFORE and pieces[i - 1] not in _NO_SPACE_AFTER:
        out.append(' ')
      out.append(p)
    return ''.join(out)

  def to_json(self) -> dict:
    return {'kind': self.kind, 'lowercase': self.lowercase, 'tokens': list(self.tokens)}

  @classmethod
  def from_json(cls, d: dict) -> 'Tokenizer':
    return cls(d['kind'], tuple(d['tokens']), bool(d.get('lowercase', False)))

  @classmethod
  def build(cls, kind: str, texts: list[str], vocab_size: int = 0,
            lowercase: bool = False) -> 'Tokenizer':
    """The vocabulary of `texts`: every character (sorted), or the vocab_size - 1 most frequent
    words (ties by the word, so it is the same on every machine); vocab_size 0 keeps all."""
    probe = cls(kind, (UNK,), lowercase)
    counts = collections.Counter()
    for text in texts:
      counts.update(probe.pieces(text))
    counts.pop(UNK, None)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    if vocab_size:
      ranked = ranked[:vocab_size - 1]
    if kind == 'char':
      ranked = sorted(ranked)
    return cls(kind, (UNK, *ranked), lowercase)


# -- settings ----------------------------------------------------------------------------------
def _data(config, key, default):
  value = config.data.get(key, None)
  return default if value is None else value


def settings(config) -> dict:
  """The text keys of a config, checked, with their defaults: the one place that reads them."""
  name = config.get('dataset', None)
  if not isinstance(name, str) or not name:
    raise UserError(f'config.dataset must name a text data set, got {name!r}: e.g. '
                    '--config.dataset=shakespeare or --config.dataset=text:/path/to/corpus.')
  eval_cfg = config.get('eval', None) or {}
  s = dict(
      name=name, data_dir=config.get('data_dir', None),
      tokenizer=one_of(config.data.tokenizer, TOKENIZERS, 'data.tokenizer'),
      vocab_size=int_at_least(_data(config, 'vocab_size', 0), 0, 'data.vocab_size'),
      lowercase=bool(_data(config, 'lowercase', False)),
      seq_len=int_at_least(_data(config, 'seq_len', 128), 1, 'data.seq_len'),
      tbptt=bool(_data(config, 'tbptt', False)),
      split_by=_data(config, 'split_by', 'auto'),
      held_out_fraction=_data(config, 'held_out_fraction', 0.1),
      eval_seq_len=int_at_least(eval_cfg.get('seq_len', 512), 1, 'eval.seq_len'),
      eval_context=int_at_least(eval_cfg.get('context', 64), 0, 'eval.context'),
      splits={'train': _data(config, 'train_split', 'train'),
              'eval': _data(config, 'eval_split', 'validation'),
              'test': _data(config, 'test_split', 'test')})
  if s['tokenizer'] == 'word' and s['vocab_size'] == 1:
    raise UserError('config.data.vocab_size=1 leaves only <unk>: give 0 (all words) or more.')
  return s


# -- documents and streams ---------------------------------------------------------------------
_STREAMS: dict[tuple, np.ndarray] = {}
_TOKENIZERS: dict[tuple, Tokenizer] = {}


def clear_cache() -> None:
  """Forgets token streams and vocabularies (pipeline.clear_cache calls it)."""
  _STREAMS.clear()
  _TOKENIZERS.clear()


def documents(s: dict, split: str) -> list[str]:
  """The documents of `split` (a split name such as 'train' or 'validation')."""
  if s['name'].startswith(USER_TEXT):
    path = s['name'][len(USER_TEXT):]
    parts = text_sources.load_user_text(path, s['split_by'], s['held_out_fraction'])
    if split not in parts:
      raise UserError(f"A text:PATH data set has the splits {sorted(parts)}, not {split!r}: "
                      'fix --config.data.*_split.')
    return parts[split]
  return text_sources.load_documents(s['name'], split, s['data_dir'])


def _key(s: dict, *rest) -> tuple:
  return (s['name'], source_lib.resolve_data_dir(s['data_dir']), s['tokenizer'],
          s['vocab_size'], s['lowercase'], s['splits']['train'], s['split_by'],
          s['held_out_fraction'], *rest)


def tokenizer(s: dict) -> Tokenizer:
  """The vocabulary of the train split (built once per process)."""
  key = _key(s)
  if key not in _TOKENIZERS:
    train = documents(s, s['splits']['train'])
    if not any(t.strip() for t in train):
      raise UserError(f"The train split of {s['name']!r} is empty: give a text with content.")
    _TOKENIZERS[key] = Tokenizer.build(s['tokenizer'], train, s['vocab_size'], s['lowercase'])
  return _TOKENIZERS[key]


def stream(s: dict, split: str) -> np.ndarray:
  """The token ids of `split`, its documents joined by a blank line: int32 (N,)."""
  key = _key(s, split)
  if key not in _STREAMS:
    tok = tokenizer(s)
    _STREAMS[key] = tok.encode(_JOIN.join(documents(s, split)))
  return _STREAMS[key]


def _check_length(s: dict, role: str, ids: np.ndarray, need: int, why: str) -> None:
  if len(ids) < need:
    raise UserError(
        f"The {role} split ({s['splits'][role]!r}) of {s['name']!r} has {len(ids)} "
        f"{s['tokenizer']} tokens, fewer than {need} ({why}): give a longer text, or lower "
        '--config.data.seq_len (and --config.batch_size with data.tbptt).')


# -- the info the trainer and the method need ---------------------------------------------------
def get_info(config) -> source_lib.DataInfo:
  s = settings(config)
  tok = tokenizer(s)
  sizes = {role: len(stream(s, split)) for role, split in s['splits'].items()}
  t = s['seq_len']
  need, why = t + 1, 'one window of data.seq_len + 1'
  if s['tbptt']:  # batch_size rows of a window each, and room to shift them by < T
    need, why = (t + 1) * config.batch_size + t, 'batch_size rows of data.seq_len + 1, + seq_len'
  _check_length(s, 'train', stream(s, s['splits']['train']), need, why)
  for role in ('eval', 'test'):
    _check_length(s, role, stream(s, s['splits'][role]), 2, 'one token to predict')
  return source_lib.DataInfo(name=s['name'], image_shape=(), num_classes=0,
                             num_examples=sizes, tokenizer=tok)


def check_vocabulary(info: source_lib.DataInfo, workdir: str) -> None:
  """Stops when WORKDIR/vocab.json (written when the run started) is not this vocabulary."""
  if not workdir:  # the benchmark's runs have none
    return
  path = os.path.join(workdir, VOCAB_FILE)
  if info.tokenizer is None or not os.path.exists(path):
    if info.tokenizer is None and os.path.exists(path):
      raise UserError(f'{workdir} holds a language model ({path}); this config is not one: use '
                      'the config it was trained with, or a new --workdir.')
    return
  try:
    with open(path) as f:
      saved = Tokenizer.from_json(json.load(f))
  except (OSError, ValueError, KeyError) as e:
    raise UserError(f'{path} is unreadable ({e}): restore it, or use a new --workdir.') from e
  new = info.tokenizer
  if saved.kind != new.kind:
    names = {'char': 'character', 'word': 'word'}
    raise UserError(f'{workdir} holds a {names[saved.kind]}-level model ({path}) but this '
                    f'config is {names[new.kind]}-level (config.data.tokenizer={new.kind!r}): '
                    f'use a {saved.kind} config, or a new --workdir.')
  if saved != new:
    raise UserError(f'The vocabulary of this config and data ({new.vocab_size} tokens) is not the '
                    f"one {workdir} was trained with ({path}, {saved.vocab_size} tokens): use the "
                    'same data set and data.* settings, or a new --workdir.')


def save_vocabulary(info: source_lib.DataInfo, workdir: str) -> None:
  if info.tokenizer is None or os.path.exists(os.path.join(workdir, VOCAB_FILE)):
    return
  os.makedirs(workdir, exist_ok=True)
  files.write_json(os.path.join(workdir, VOCAB_FILE), info.tokenizer.to_json())


def encode_prompt(tok: Tokenizer, prompt: str) -> np.ndarray:
  """The prompt's ids; pieces outside the vocabulary map to <unk>, and stderr says which."""
  if not prompt:
    raise UserError('The prompt is empty: give at least one character, e.g. --prompt="\\n".')
  unknown = tok.unknown(prompt)
  if unknown:
    print(f'genlab: the prompt has {len(unknown)} {tok.kind} token(s) outside the vocabulary, '
          f'read as {UNK}: {", ".join(map(repr, unknown[:20]))}', file=sys.stderr)
  ids = tok.encode(prompt)
  if not len(ids):
    raise UserError(f'The prompt {prompt!r} has no {tok.kind} tokens: give some text.')
  return ids


# -- batches -----------------------------------------------------------------------------------
class _Windows:
  """Random-access sequence: item s is this process's rows of global batch s."""

  def __init__(self, ids, *, seq_len, tbptt, seed, global_batch, process_index, process_count):
    self._ids, self._t, self._tbptt = ids, seq_len, tbptt
    self._seed = batches_lib.seed64(seed)
    self._global = global_batch
    self._rows = process_index * (global_batch // process_count) + np.arange(
        global_batch // process_count)

  def __len__(self) -> int:
    return sys.maxsize

  def _starts(self, step: int) -> tuple[np.ndarray, np.ndarray]:
    n, t = len(self._ids), self._t
    if not self._tbptt:
      rng = np.random.default_rng([self._seed, _WINDOW_TAG, step])
      starts = rng.integers(0, n - t, size=self._global)[self._rows]
      return starts, np.ones(len(starts), np.float32)
    # Epoch e cuts the stream, shifted by offset_e < T, into B rows of K windows each.
    rows_len = (n - t) // self._global  # leaves room for any offset and the last target
    per_epoch = max(1, (rows_len - 1) // t)
    epoch, k = divmod(step, per_epoch)
    offset = np.random.default_rng([self._seed, _OFFSET_TAG, epoch]).integers(0, t)
    starts = offset + self._rows * rows_len + k * t
    return starts, np.full(len(starts), float(k == 0), np.float32)

  def __getitem__(self, step: int) -> dict:
    starts, reset = self._starts(step)
    idx = starts[:, None] + np.arange(self._t + 1)[None]
    window = self._ids[idx]
    return {'inputs': window[:, :-1], 'targets': window[:, 1:], 'reset': reset}


def train_iterator(config, *, process_index: int = 0, process_count: int = 1):
  s = settings(config)
  batches_lib.local_batch_size(config.get('batch_size', None), process_count)
  ids = stream(s, s['splits']['train'])
  windows = _Windows(ids, seq_len=s['seq_len'], tbptt=s['tbptt'], seed=config.get('seed', 0),
                     global_batch=config.batch_size, process_index=process_index,
                     process_count=process_count)
  return batches_lib.iterator(windows)


def eval_windows(ids: np.ndarray, seq_len: int, context: int) -> dict[str, np.ndarray]:
  """All evaluation windows of a stream: 'inputs', 'targets', 'weights' (W, context + seq_len).

  Window w scores targets ids[w*L + 1 .. (w+1)*L] (those that exist), reading inputs from
  position w*L - C on; positions before the stream and after its end have weight 0.
  """
  n = len(ids)
  num = -(-(n - 1) // seq_len)
  pos = (np.arange(num) * seq_len)[:, None] - context + np.arange(context + seq_len)[None]
  scored = (np.arange(context + seq_len) >= context)[None]
  valid = (pos >= 0) & (pos < n - 1)
  safe = np.clip(pos, 0, n - 2)
  return {'inputs': ids[safe], 'targets': ids[safe + 1],
          'weights': (valid & scored).astype(np.float32)}


def eval_batches(config, split: str, batch_size: int, *, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """One ordered pass over the evaluation windows of `split` in global batches; this
  process's rows, padded with weight-0 windows (mask 0) to a full last batch."""
  s = settings(config)
  local = batches_lib.local_batch_size(batch_size, process_count, what='eval batch_size')
  w = eval_windows(stream(s, split), s['eval_seq_len'], s['eval_context'])
  for idx, real in batches_lib.eval_rows(len(w['inputs']), batch_size, local, process_index):
    batch = {k: v[idx] for k, v in w.items()}
    batch['weights'] = batch['weights'] * real[:, None]
    batch['mask'] = real.astype(np.float32)
    yield batch


def split_arrays(config, role: str) -> dict[str, np.ndarray]:
  """{'ids': int32 (N,)}: the whole token stream of the split of `role` (for baselines)."""
  s = settings(config)
  return {'ids': stream(s, s['splits'][role])}
