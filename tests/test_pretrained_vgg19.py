"""VGG19 from the user's file (Keras' notop .h5, either dataset naming, or genlab's .npz): the
shape checks and their messages, the sha256-named cache, and Caffe's input standardisation."""
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab.errors import UserError
from genlab.pretrained import vgg

SHAPES = vgg.vgg19_expected_shapes()  # {'conv1_1/kernel': (3, 3, 3, 64), ...}


def keras_name(layer):  # conv3_4 -> block3_conv4
  b, i = layer[len('conv'):].split('_')
  return f'block{b}_conv{i}'


@pytest.fixture(scope='module')
def flat():
  """Random weights of VGG19's real shapes (20 M float32), as {'conv1_1/kernel': ...}."""
  rng = np.random.default_rng(0)
  return {k: rng.standard_normal(s, dtype=np.float32) * 0.01 for k, s in SHAPES.items()}


def write_keras(path, flat, layout='old'):
  """A Keras-layout weights file: 'old' (block1_conv1/block1_conv1_W_1:0, Keras 1 / early 2)
  or 'new' (block1_conv1/block1_conv1/kernel:0, one level deeper), with the empty pool groups
  and the layer_names attribute Keras writes."""
  with h5py.File(path, 'w') as h5:
    names = []
    for key, value in flat.items():
      layer, leaf = key.split('/')
      name = keras_name(layer)
      group = h5.require_group(name)
      if layout == 'old':
        group[f'{name}_{"W" if leaf == "kernel" else "b"}_1:0'] = value
      else:
        group.require_group(name)[f'{leaf}:0'] = value
      if name not in names:
        names.append(name)
    for b in range(1, 6):
      h5.create_group(f'block{b}_pool')
    h5.attrs['layer_names'] = np.array([n.encode() for n in names])
  return path


@pytest.fixture(scope='module')
def keras_file(flat, tmp_path_factory):
  return write_keras(tmp_path_factory.mktemp('keras') / vgg._VGG19_FILE, flat, 'old')


@pytest.fixture(scope='module')
def params(keras_file):
  return vgg.load_vgg19(keras_file)


def assert_params_equal(params, flat):
  assert sorted(f'{l}/{k}' for l in params for k in params[l]) == sorted(flat)
  for key, value in flat.items():
    layer, leaf = key.split('/')
    np.testing.assert_array_equal(params[layer][leaf], value)


def test_both_keras_layouts_and_the_npz_give_the_same_params(params, flat, tmp_path):
  assert_params_equal(params, flat)
  assert params['conv5_4']['kernel'].shape == (3, 3, 512, 512) and len(params) == 16
  newer = write_keras(tmp_path / 'newer.h5', flat, 'new')
  assert_params_equal(vgg.load_vgg19(newer), flat)
  np.savez(tmp_path / 'vgg19.npz', **flat)
  assert_params_equal(vgg.load_vgg19(tmp_path / 'vgg19.npz'), flat)


def test_caffe_standardisation_of_a_red_pixel():
  red = jnp.asarray([[[[1.0, 0.0, 0.0]]]])
  np.testing.assert_allclose(vgg._standardise(red, True, 'caffe')[0, 0, 0],
                             [0 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-6)
  np.testing.assert_allclose(vgg._standardise(red, True, 'torch')[0, 0, 0],
                             (np.array([1, 0, 0]) - vgg.IMAGENET_MEAN) / vgg.IMAGENET_STD,
                             rtol=1e-6)
  np.testing.assert_array_equal(vgg._standardise(red, False, 'caffe'), red)
  with pytest.raises(UserError, match=r"preprocessing='tf' .* \['torch', 'caffe'\]"):
    vgg.VGG(depth=19, preprocessing='tf').init(jax.random.PRNGKey(0), red)


def test_caffe_vgg19_forward_returns_the_layers_asked(params):
  x = jnp.asarray(np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32))
  net = vgg.vgg19_caffe(pooling='avg')
  assert (net.depth, net.preprocessing, net.pooling) == (19, 'caffe', 'avg')
  feats = net.apply({'params': params}, x, layers=('relu1_1', 'relu4_2', 'pool5'))
  assert list(feats) == ['relu1_1', 'relu4_2', 'pool5']
  assert feats['relu1_1'].shape == (2, 32, 32, 64) and feats['relu4_2'].shape == (2, 4, 4, 512)
  assert feats['pool5'].shape == (2, 1, 1, 512) and bool(jnp.all(jnp.isfinite(feats['pool5'])))
  # The module standardises as Caffe does: the same as feeding BGR*255 - mean unstandardised.
  raw = vgg.VGG(depth=19, normalize_input=False).apply(
      {'params': params}, x[..., ::-1] * 255 - jnp.asarray(vgg.CAFFE_MEAN_BGR), layers='conv1_1')
  np.testing.assert_allclose(net.apply({'params': params}, x, layers='conv1_1')['conv1_1'],
                             raw['conv1_1'], rtol=1e-5, atol=1e-4)


def test_a_wrong_shape_or_a_missing_layer_is_one_line_naming_it(flat, tmp_path):
  bad = dict(flat, **{'conv3_4/kernel': flat['conv3_4/kernel'][..., :128]})
  write_keras(tmp_path / 'bad.h5', bad)
  with pytest.raises(UserError) as e:
    vgg.load_vgg19(tmp_path / 'bad.h5')
  message = str(e.value)
  assert '\n' not in message and message.count('expected') == 1, message
  assert 'conv3_4/kernel: expected (3, 3, 256, 256), got (3, 3, 256, 128)' in message
  assert vgg._VGG19_FILE in message and not vgg.vgg19_cache_path(tmp_path / 'bad.h5').exists()

  some = {k: v for k, v in flat.items() if not k.startswith(('conv5_4', 'conv2_1/bias'))}
  np.savez(tmp_path / 'some.npz', **some)
  with pytest.raises(UserError, match=r'conv2_1/bias: expected \(128,\), got missing; '
                                      r'conv5_4/bias: expected \(512,\), got missing; '
                                      r'conv5_4/kernel: expected \(3, 3, 512, 512\), got missing\)'
                                      r'.*'
                                      r'vgg19_weights_tf_dim_ordering_tf_kernels_notop\.h5'):
    vgg.load_vgg19(tmp_path / 'some.npz')
  write_keras(tmp_path / 'block1.h5', {k: v for k, v in flat.items() if k.startswith('conv1_')})
  with pytest.raises(UserError, match=r'\(conv2_1/bias: expected \(128,\), got missing; .*'
                                      r'conv5_4/kernel: expected \(3, 3, 512, 512\), '
                                      r'got missing\)'):
    vgg.load_vgg19(tmp_path / 'block1.h5')


def test_a_missing_file_or_a_text_file_is_one_line(tmp_path):
  with pytest.raises(UserError, match=r'nope\.h5 does not exist: give Keras'):
    vgg.load_vgg19(tmp_path / 'nope.h5')
  (tmp_path / 'weights.h5').write_text('these are not weights\n')
  with pytest.raises(UserError, match=r'weights\.h5 is neither an HDF5 \(\.h5\) nor an \.npz'):
    vgg.load_vgg19(tmp_path / 'weights.h5')


def test_the_h5_is_converted_once_into_a_cache_named_by_its_hash(params, keras_file, flat,
                                                                 monkeypatch):
  cache = vgg.vgg19_cache_path(keras_file)
  assert cache.parent == vgg.packages.cache_dir('pretrained') and cache.exists()
  assert cache.name.startswith('vgg19-') and len(cache.stem) == len('vgg19-') + 12
  mtime = os.stat(cache).st_mtime_ns
  monkeypatch.setattr(vgg, '_read_keras_h5', lambda p: pytest.fail('not from the cache'))
  assert_params_equal(vgg.load_vgg19(keras_file), flat)
  assert os.stat(cache).st_mtime_ns == mtime

  # Another file (one weight changed) does not hit the first one's cache.
  other = dict(flat, **{'conv1_1/bias': flat['conv1_1/bias'] + 1})
  write_keras(keras_file.parent / 'other.h5', other)
  assert vgg.vgg19_cache_path(keras_file.parent / 'other.h5') != cache
  monkeypatch.undo()
  np.testing.assert_array_equal(vgg.load_vgg19(keras_file.parent / 'other.h5')['conv1_1']['bias'],
                                other['conv1_1/bias'])

  # A damaged cache is one line saying to delete it.
  cache.write_bytes(b'not a zip')
  with pytest.raises(UserError, match=r'vgg19-[0-9a-f]{12}\.npz is not a readable weights cache'):
    vgg.load_vgg19(keras_file)
  cache.unlink()
