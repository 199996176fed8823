"""Tests for genlab/models/stylegan2.py: the StyleGAN2 ops and networks (Karras et al. 2020).

The ops are checked against straightforward numpy statements of the reference's definitions
(float64): _upfirdn2d_ref, the modulated convolution of Eq. 1-3 composed with the reference's
generic resampling path, MinibatchStdLayer. The networks are checked for shapes, noise
handling, initialisation, mixed precision and, where torch is installed, against
benchmarks/torch_stylegan2.py. Widths are tiny and inputs come from numpy, so that each case
is a small compilation. Variables come from jax.eval_shape and numpy (not module.init, whose
compilation costs seconds per network), except where the initialisation is what is tested.
"""
import functools
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab.errors import UserError
from genlab.models import stylegan2 as sg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _normal(shape, seed=0, scale=1.0):
  return (scale * np.random.default_rng(seed).normal(size=shape)).astype(np.float32)


# -- numpy statements of the reference ops -----------------------------------------------------
def np_upfirdn2d(x, f, up=1, down=1, pad=(0, 0, 0, 0), gain=1.0):
  """_upfirdn2d_ref in float64 numpy, channels-last: insert zeros, pad (negative crops),
  convolve with f (flipped f, correlated), keep every down-th pixel."""
  f = np.ones((1, 1)) if f is None else np.asarray(f, np.float64)
  if f.ndim == 1:  # the reference's two separable passes, each with gain ** 0.5
    f = np.outer(f, f)
  b, h, w, c = x.shape
  z = np.zeros((b, h * up, w * up, c))
  z[:, ::up, ::up] = x
  x0, x1, y0, y1 = pad
  z = np.pad(z, ((0, 0), (max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0)), (0, 0)))
  z = z[:, max(-y0, 0):z.shape[1] - max(-y1, 0), max(-x0, 0):z.shape[2] - max(-x1, 0)]
  flipped = (f * gain)[::-1, ::-1]
  oh, ow = z.shape[1] - f.shape[0] + 1, z.shape[2] - f.shape[1] + 1
  out = np.zeros((b, oh, ow, c))
  for i in range(f.shape[0]):
    for j in range(f.shape[1]):
      out += flipped[i, j] * z[:, i:i + oh, j:j + ow]
  return out[:, ::down, ::down]


def np_correlate(x, w_BxKxKxIxO, pad=0):
  """Per-sample correlation (the conv of deep learning), float64."""
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  _, kh, kw, _, _ = w_BxKxKxIxO.shape
  oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  return sum(np.einsum('bhwi,bio->bhwo', x[:, i:i + oh, j:j + ow], w_BxKxKxIxO[:, i, j])
             for i in range(kh) for j in range(kw))


def np_modulated_conv2d(x, weight, styles, demodulate, up, down, padding, f):
  """Karras et al. 2020, Eq. 1-3 with per-sample weights, then the reference's generic
  conv2d_resample path: FIR up-sampling (or only padding), correlation, FIR down-sampling."""
  w = weight[None].astype(np.float64) * styles[:, None, None, :, None]
  if demodulate:
    w = w / np.sqrt(np.sum(w ** 2, axis=(1, 2, 3), keepdims=True) + 1e-8)
  fw = f.shape[-1]
  p0 = p1 = padding
  if up > 1:
    p0, p1 = p0 + (fw + up - 1) // 2, p1 + (fw - up) // 2
  if down > 1:
    p0, p1 = p0 + (fw - down + 1) // 2, p1 + (fw - down) // 2
  x = np_upfirdn2d(x, f if up > 1 else None, up=up, pad=(p0, p1, p0, p1), gain=up ** 2)
  y = np_correlate(x, w)
  return np_upfirdn2d(y, f, down=down) if down > 1 else y


def np_minibatch_stddev(x, group_size, num_channels):
  """MinibatchStdLayer.forward in numpy on the NCHW transpose."""
  x = x.transpose(0, 3, 1, 2).astype(np.float64)
  n, c, h, w = x.shape
  g = min(group_size, n) if group_size is not None else n
  y = x.reshape(g, -1, num_channels, c // num_channels, h, w)
  y = np.sqrt(np.mean((y - y.mean(axis=0)) ** 2, axis=0) + 1e-8)
  y = np.tile(y.mean(axis=(2, 3, 4)).reshape(-1, num_channels, 1, 1), (g, 1, h, w))
  return np.concatenate([x, y], axis=1).transpose(0, 2, 3, 1)


def _close(new, ref, rel=1e-5):
  new, ref = np.asarray(new, np.float64), np.asarray(ref, np.float64)
  assert new.shape == ref.shape, (new.shape, ref.shape)
  np.testing.assert_allclose(new, ref, rtol=0, atol=rel * max(1.0, np.abs(ref).max()))


# -- ops ---------------------------------------------------------------------------------------
def test_setup_filter_as_the_reference():
  f = sg.setup_filter((1, 3, 3, 1))
  np.testing.assert_array_equal(f, np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
  assert f.dtype == np.float32
  assert sg.setup_filter(np.ones(8)).shape == (8,)            # >= 8 taps stay separable
  np.testing.assert_allclose(sg.setup_filter((1, 1), gain=4), np.full((2, 2), 1.0))
  with pytest.raises(UserError, match='resample_filter'):
    sg.setup_filter(np.ones((2, 2, 2)))


@pytest.mark.parametrize('f,up,down,pad,gain', [
    ('sym', 1, 1, (0, 0, 0, 0), 1.0),
    ('sym', 2, 1, (2, 1, 2, 1), 4.0),          # upsample2d's padding
    ('sym', 1, 2, (1, 1, 1, 1), 1.0),          # downsample2d's padding
    ('asym2d', 2, 1, (-1, 3, 0, -2), 2.0),     # negative padding crops; filter orientation
    ('asym2d', 1, 2, (2, 1, 0, 3), 1.0),
    ('taps', 2, 2, (3, 2, 1, 2), 1.5),         # 1-D separable filter, up and down at once
    ('asym2d', 3, 1, (0, 0, 0, 0), 1.0),
])
def test_upfirdn2d_matches_numpy(f, up, down, pad, gain):
  filt = {'sym': sg.setup_filter(), 'asym2d': _normal((3, 4), seed=1),
          'taps': sg.setup_filter(np.arange(1.0, 9.0))}[f]
  x = _normal((2, 7, 6, 3))
  _close(jax.jit(lambda x: sg.upfirdn2d(x, filt, up, down, pad, gain))(x),
         np_upfirdn2d(x, filt, up, down, pad, gain))


def test_upsample2d_keeps_a_constant_away_from_the_borders():
  y = np.asarray(sg.upsample2d(jnp.full((1, 6, 6, 2), 0.7), sg.setup_filter()))
  assert y.shape == (1, 12, 12, 2)
  np.testing.assert_allclose(y[:, 2:-2, 2:-2], 0.7, rtol=1e-6)
  assert abs(y[0, 0, 0, 0] - 0.7) > 0.1                       # zeros outside the image
  z = np.asarray(sg.downsample2d(jnp.full((1, 8, 8, 1), 0.7), sg.setup_filter()))
  assert z.shape == (1, 4, 4, 1)
  np.testing.assert_allclose(z[:, 1:-1, 1:-1], 0.7, rtol=1e-6)


@pytest.mark.parametrize('kernel,up,down,padding,demodulate', [
    (3, 1, 1, 1, True), (3, 2, 1, 1, True), (3, 1, 2, 1, True), (1, 2, 1, 0, True),
    (1, 1, 2, 0, True), (3, 1, 1, 0, False), (1, 1, 1, 0, False)])
def test_modulated_conv2d_matches_numpy(kernel, up, down, padding, demodulate):
  """Every impl against the numpy statement of Eq. 1-3; an asymmetric filter, so that a
  swapped padding side or a flipped filter would show."""
  x = _normal((3, 6, 6, 4))
  weight = _normal((kernel, kernel, 4, 5), seed=1)
  styles = _normal((3, 4), seed=2) + 1.0
  f = sg.setup_filter((1, 2, 4, 1))
  ref = np_modulated_conv2d(x, weight, styles, demodulate, up, down, padding, f)
  ys = jax.jit(lambda *a: [sg.modulated_conv2d(*a, demodulate, up, down, padding, f, impl)
                           for impl in sg.MODCONV_IMPLS])(x, weight, styles)
  for y in ys:
    _close(y, ref)


@pytest.mark.parametrize('kernel,up,down,padding,groups', [
    (3, 2, 1, 1, 1), (3, 2, 1, 0, 2), (4, 2, 1, 2, 1), (3, 2, 2, 1, 1), (3, 3, 1, 1, 1)])
def test_conv2d_resample_up_forms_agree(kernel, up, down, padding, groups):
  """Up-sampling as the reference's transposed-conv fast path and as its generic path (the
  default on the CPU) against numpy, with and without groups, odd and even kernels."""
  x = _normal((2, 5, 5, 2 * groups))
  w = _normal((kernel, kernel, 2, 3 * groups), seed=1)
  f = sg.setup_filter((1, 2, 4, 1))
  w_per_group = w.reshape(kernel, kernel, 2, groups, 3)
  ref = np.concatenate([np_modulated_conv2d(
      x[..., 2 * g:2 * g + 2], w_per_group[..., g, :], np.ones((2, 2)), False, up, down,
      padding, f) for g in range(groups)], axis=-1)
  ys = jax.jit(lambda x, w: [sg.conv2d_resample(x, w, f, up, down, padding, groups, transposed)
                             for transposed in (True, False)])(x, w)
  for y in ys:
    _close(y, ref)


def test_modconv_impls_have_the_same_gradients():
  x, w, s = _normal((2, 5, 5, 3)), _normal((3, 3, 3, 4), seed=1), _normal((2, 3), seed=2)
  cot = _normal((2, 10, 10, 4), seed=3)
  f = sg.setup_filter()
  grads = jax.jit(lambda *args: [jax.grad(lambda *a, impl=impl: jnp.sum(cot * sg.modulated_conv2d(
      *a, up=2, padding=1, resample_filter=f, impl=impl)), argnums=(0, 1, 2))(*args)
                                 for impl in sg.MODCONV_IMPLS])(x, w, s)
  for g in grads[1:]:
    for a, b in zip(grads[0], g):
      _close(b, a)


def test_demodulation_restores_unit_second_moment():
  """Unit-variance inputs give outputs of second moment ~1 per channel whatever the styles
  (Karras et al. 2020, Sec. 2.2); without demodulation the scale follows the styles."""
  x = jnp.asarray(_normal((8, 16, 16, 64)))
  weight = jnp.asarray(_normal((3, 3, 64, 16), seed=1))
  styles = jnp.asarray(3.0 * np.abs(_normal((8, 64), seed=2)) + 0.1)
  y = sg.modulated_conv2d(x, weight, styles, impl='activation', padding=1)
  moment = np.mean(np.square(np.asarray(y)[:, 1:-1, 1:-1]), axis=(0, 1, 2))
  assert np.all(np.abs(moment - 1) < 0.2), moment
  assert abs(moment.mean() - 1) < 0.05, moment.mean()
  y = sg.modulated_conv2d(x, weight, styles, demodulate=False, impl='activation', padding=1)
  assert np.mean(np.square(np.asarray(y)[:, 1:-1, 1:-1])) > 100


@pytest.mark.parametrize('batch,group_size,num_channels', [
    (8, 4, 2), (4, 16, 1), (6, None, 3), (4, 1, 1)])
def test_minibatch_stddev_matches_numpy(batch, group_size, num_channels):
  x = _normal((batch, 3, 4, 6)) * np.arange(1, 7)
  y = jax.jit(lambda x: sg.minibatch_stddev(x, group_size, num_channels))(x)
  assert y.shape == (batch, 3, 4, 6 + num_channels)
  _close(y, np_minibatch_stddev(x, group_size, num_channels))


def test_minibatch_stddev_batch_not_divisible():
  with pytest.raises(UserError, match='not divisible by the group size 4'):
    sg.minibatch_stddev(jnp.zeros((6, 4, 4, 8)), 4, 1)
  with pytest.raises(UserError, match='mbstd_num_channels'):
    sg.minibatch_stddev(jnp.zeros((4, 4, 4, 8)), 4, 3)


# -- networks ----------------------------------------------------------------------------------
def _variables(module, *args, strength=0.0, seed=0):
  """Variables of the module's shapes from numpy: kernels and 'const' N(0, 1) (mapping kernels
  N(0, 100^2), as stored for lr_multiplier 0.01), biases ~0.1 (affine ones ~1), every noise
  strength `strength`."""
  shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), *args)
  def fill(path, leaf):
    keys = [p.key for p in path]
    rng = np.random.default_rng(seed + leaf.size + 7 * len(jax.tree_util.keystr(path)))
    value = rng.normal(size=leaf.shape)
    if keys[-1] == 'noise_strength':
      value = np.full(leaf.shape, strength)
    elif keys[-1] == 'bias':
      value = 0.1 * value + (1.0 if 'affine' in keys else 0.0)
    elif 'mapping' in keys:
      value = 100 * value
    return jnp.asarray(value, jnp.float32)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _small_g(resolution, channels, **kw):
  return sg.Generator(z_dim=8, w_dim=8, resolution=resolution, channels=channels,
                      channel_base=16 * resolution, channel_max=8, mapping_layers=2, **kw)


@pytest.mark.parametrize('resolution,channels', [(8, 3), (32, 1)])
def test_generator_shapes(resolution, channels):
  g = _small_g(resolution, channels)
  assert g.num_ws == 2 * int(np.log2(resolution)) - 2
  z = jnp.asarray(_normal((2, 8)))
  variables = _variables(g, z)
  def run(v, z):
    ws = g.apply(v, z, method='map')
    return ws, g.apply(v, ws, 'const', method='synthesize'), g.apply(v, z, noise_mode='const')
  ws, img, img_call = jax.jit(run)(variables, z)
  assert ws.shape == (2, g.num_ws, 8)
  np.testing.assert_array_equal(ws[:, 0], ws[:, -1])          # one w, broadcast
  assert img.shape == (2, resolution, resolution, channels) and img.dtype == jnp.float32
  _close(img_call, img, 1e-6)
  params = variables['params']['synthesis']
  assert params['b4']['const'].shape == (4, 4, 8)
  assert params[f'b{resolution}']['torgb']['kernel'].shape == (1, 1, 8, channels)
  assert set(sg.noise_shapes(resolution)) == {
      f'b{r}.conv{i}' for r in (2 ** k for k in range(2, int(np.log2(resolution)) + 1))
      for i in ((1,) if r == 4 else (0, 1))}
  assert len(sg.noise_shapes(resolution)) == g.num_ws - 1 == len(g.noise_shapes())


@pytest.fixture(scope='module')
def g8():
  """A resolution-8 generator, variables with noise strengths 0.5, ws, jitted synthesis."""
  g = _small_g(8, 3)
  ws = jnp.asarray(np.repeat(_normal((2, 1, 8)), g.num_ws, axis=1))
  variables = _variables(g, jnp.zeros((2, 8)), strength=0.5)
  synth = jax.jit(lambda v, ws, noise, key, mode: g.apply(
      v, ws, mode, noise, rngs={'noise': key}, method='synthesize'), static_argnums=4)
  return g, variables, ws, synth


def test_noise_modes(g8):
  g, variables, ws, synth = g8
  key1, key2 = jax.random.PRNGKey(1), jax.random.PRNGKey(2)
  none = synth(variables, ws, None, key1, 'none')
  np.testing.assert_array_equal(none, synth(variables, ws, None, key2, 'none'))
  r1, r2 = synth(variables, ws, None, key1, 'random'), synth(variables, ws, None, key2, 'random')
  np.testing.assert_array_equal(r1, synth(variables, ws, None, key1, 'random'))
  assert float(jnp.max(jnp.abs(r1 - r2))) > 1e-3
  assert float(jnp.max(jnp.abs(r1[0] - r1[1]))) > 1e-3         # per-sample noise
  const = synth(variables, ws, None, key1, 'const')
  np.testing.assert_array_equal(const, synth(variables, ws, None, key2, 'const'))
  assert float(jnp.max(jnp.abs(const - none))) > 1e-3
  # the override replaces the unit noise map of the named layers, in any mode
  maps = {name: sg.const_noise(name, hw[0]) for name, hw in g.noise_shapes().items()}
  _close(synth(variables, ws, maps, key1, 'none'), const, 1e-6)
  zeros = {name: jnp.zeros((2, *hw, 1)) for name, hw in g.noise_shapes().items()}
  _close(synth(variables, ws, zeros, key1, 'none'), none, 1e-6)
  one = synth(variables, ws, dict(maps, **{'b8.conv0': jnp.ones((1, 8, 8, 1))}), key1, 'none')
  assert float(jnp.max(jnp.abs(one - const))) > 1e-3


def test_noise_errors(g8):
  g, variables, ws, _ = g8
  with pytest.raises(UserError, match='noise_shapes'):
    g.apply(variables, ws, 'none', {'b8.conv2': jnp.zeros((1, 8, 8, 1))}, method='synthesize')
  with pytest.raises(UserError, match='noise_shapes'):
    g.apply(variables, ws, 'none', {'b8.conv0': jnp.zeros((1, 4, 4, 1))}, method='synthesize')
  with pytest.raises(UserError, match="rngs={'noise': key}"):
    g.apply(variables, ws, 'random', method='synthesize')
  with pytest.raises(UserError, match='noise_mode'):
    g.apply(variables, ws, 'fixed', method='synthesize')
  with pytest.raises(UserError, match=r'\(batch, 4, 8\)'):
    g.apply(variables, ws[:, :3], 'none', method='synthesize')


def test_initialisation_and_equalized_learning_rate():
  """Stored weights are N(0, 1 / lr_mul^2) (mapping: lr_mul 0.01), affine biases 1, other
  biases and the noise strengths 0, so that at init 'random' noise equals 'none'."""
  g = sg.Generator(z_dim=64, w_dim=64, resolution=4, channels=1, channel_base=512,
                   channel_max=64, mapping_layers=2)
  z = jnp.asarray(_normal((2, 64)))
  variables = jax.jit(g.init)(jax.random.PRNGKey(0), z)          # no 'noise' rng needed
  flat = {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(variables['params'])[0]}
  mapping = np.concatenate([v.ravel() for k, v in flat.items() if 'mapping' in k and 'kernel' in k])
  assert abs(mapping.std() - 100) < 5 and abs(mapping.mean()) < 5
  others = np.concatenate([v.ravel() for k, v in flat.items()
                           if 'synthesis' in k and ('kernel' in k or 'const' in k)])
  assert others.size > 30_000 and abs(others.std() - 1) < 0.05
  for k, v in flat.items():
    if k.endswith("['bias']"):
      np.testing.assert_array_equal(v, 1.0 if "['affine']" in k else 0.0)
    if 'noise_strength' in k:
      assert v.shape == () and v == 0
  random, none = jax.jit(lambda v, z, key: (g.apply(v, z, rngs={'noise': key}),
                                            g.apply(v, z, 'none')))(
                                                variables, z, jax.random.PRNGKey(3))
  np.testing.assert_array_equal(random, none)


def test_effective_scale_independent_of_fan_in():
  """Equalized learning rate (Karras et al. 2018, Sec. 4.1): unit-variance inputs give
  unit-variance outputs at init for any fan-in and learning-rate multiplier, dense or conv."""
  def init_apply(layer, x):
    return layer.apply(layer.init(jax.random.PRNGKey(x.shape[-1]), x), x)
  for lr_multiplier in (1.0, 0.01):
    for fan_in in (8, 512):
      layer = sg.FullyConnected(256, lr_multiplier=lr_multiplier)
      y = jax.jit(lambda x: init_apply(layer, x))(_normal((128, fan_in)))
      assert abs(float(jnp.std(y)) - 1) < 0.1, (lr_multiplier, fan_in, float(jnp.std(y)))
  for channels in (2, 128):
    conv = sg.Conv2dLayer(64, 3, activation='linear')
    y = jax.jit(lambda x: init_apply(conv, x))(_normal((4, 8, 8, channels)))[:, 1:-1, 1:-1]
    assert abs(float(jnp.std(y)) - 1) < 0.15, (channels, float(jnp.std(y)))


@pytest.mark.parametrize('resolution,architecture', [
    (8, 'resnet'), (32, 'resnet'), (8, 'orig'), (32, 'orig'), (16, 'skip'), (4, 'resnet')])
def test_discriminator_shapes(resolution, architecture):
  d = sg.Discriminator(resolution=resolution, channels=3, channel_base=16 * resolution,
                       channel_max=8, architecture=architecture)
  x = jnp.asarray(_normal((4, resolution, resolution, 3)))
  variables = _variables(d, x)
  y = jax.jit(d.apply)(variables, x)
  assert y.shape == (4,) and y.dtype == jnp.float32 and np.all(np.isfinite(y))
  params = variables['params']
  if resolution == 4:  # beyond the reference: fromRGB in the epilogue
    assert set(params) == {'b4'} and 'fromrgb' in params['b4']
    return
  assert ('skip' in params[f'b{resolution}']) == (architecture == 'resnet')
  assert ('fromrgb' in params['b8']) == (architecture == 'skip' or resolution == 8)
  assert params['b4']['conv']['kernel'].shape == (3, 3, 9, 8)   # + 1 mbstd channel
  with pytest.raises(UserError, match='divisible'):
    jax.eval_shape(d.apply, variables, jnp.concatenate([x, x[:2]]))


def test_bfloat16_resolutions_stay_close_to_float32():
  g32, gbf = _small_g(8, 3), _small_g(8, 3, num_bf16_res=1, conv_clamp=256)
  ws = jnp.asarray(np.repeat(_normal((2, 1, 8)), g32.num_ws, axis=1))
  variables = _variables(g32, jnp.zeros((2, 8)), strength=0.3)
  synth = lambda g: jax.jit(lambda v, ws: g.apply(v, ws, 'const', method='synthesize'))
  a, b = synth(g32)(variables, ws), synth(gbf)(variables, ws)
  assert b.dtype == jnp.float32
  _close(b, a, 0.05)
  assert float(jnp.max(jnp.abs(a - b))) > 0                     # it did run in bfloat16
  d32 = sg.Discriminator(resolution=8, channels=3, channel_base=128, channel_max=8)
  dbf = sg.Discriminator(resolution=8, channels=3, channel_base=128, channel_max=8,
                         num_bf16_res=1, conv_clamp=256)
  variables = _variables(d32, a)
  _close(jax.jit(dbf.apply)(variables, a), jax.jit(d32.apply)(variables, a), 0.05)


@pytest.mark.parametrize('architecture', ['skip', 'resnet'])
def test_batch_split_is_the_same_function(architecture):
  """G and D with their blocks in slices of the rows (batch_split, gcd with the batch: 4 -> 2
  for 6 rows) give the images, logits and gradients of the whole batch, 'random' noise
  included (drawn for the whole batch); D's minibatch stddev groups span the slices."""
  def nets(k):
    return (_small_g(8, 3, batch_split=k),
            sg.Discriminator(resolution=8, channels=3, channel_base=128, channel_max=8,
                             mbstd_group_size=3, architecture=architecture, batch_split=k))
  g, d = nets(1)
  ws = jnp.asarray(np.repeat(_normal((6, 1, 8)), g.num_ws, axis=1))
  params = (_variables(g, jnp.zeros((6, 8)), strength=0.5)['params'],
            _variables(d, jnp.zeros((6, 8, 8, 3)))['params'])
  override = {'b8.conv0': jnp.asarray(_normal((1, 8, 8, 1), 1)),
              'b8.conv1': jnp.asarray(_normal((6, 8, 8, 1), 2))}

  def outputs(k, params):
    g, d = nets(k)
    def total(params):
      img = g.apply({'params': params[0]}, ws, 'random', override, rngs={'noise': key},
                    method='synthesize')
      logits = d.apply({'params': params[1]}, img)
      return jnp.sum(logits * jnp.arange(1.0, 7.0)), (img, logits)
    return jax.grad(total, has_aux=True)(params)

  key = jax.random.PRNGKey(5)
  whole, (img, logits) = jax.jit(functools.partial(outputs, 1))(params)
  for k in (2, 4):
    grads, (img_k, logits_k) = jax.jit(functools.partial(outputs, k))(params)
    _close(img_k, img, 1e-5)
    _close(logits_k, logits, 1e-5)
    jax.tree.map(lambda a, b: _close(a, b, 1e-4), grads, whole)
  assert float(jnp.max(jnp.abs(logits - logits[::-1]))) > 1e-3     # rows kept in order


def test_bad_configs_are_user_errors():
  z = jnp.zeros((2, 8))
  for resolution in (2, 12, 48, 32.0):
    with pytest.raises(UserError, match='power of two'):
      jax.eval_shape(_small_g(resolution, 1).init,
                     jax.random.PRNGKey(0), z)
  with pytest.raises(UserError, match='power of two'):
    jax.eval_shape(sg.Discriminator(resolution=24).init, jax.random.PRNGKey(0),
                   jnp.zeros((4, 24, 24, 3)))
  with pytest.raises(UserError, match='model.modconv_impl'):
    jax.eval_shape(_small_g(8, 1, modconv_impl='fused').init, jax.random.PRNGKey(0), z)
  with pytest.raises(UserError, match='model.architecture'):
    jax.eval_shape(sg.Discriminator(resolution=8, architecture='res').init,
                   jax.random.PRNGKey(0), jnp.zeros((4, 8, 8, 3)))
  with pytest.raises(UserError, match='num_bf16_res'):
    jax.eval_shape(_small_g(8, 1, num_bf16_res=-1).init, jax.random.PRNGKey(0), z)


# -- parity with the reference, restated in PyTorch --------------------------------------------
@functools.lru_cache(maxsize=None)  # loaded once: the script defines absl flags
def _load_torch_reference():
  import torch  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      'torch_stylegan2', os.path.join(ROOT, 'benchmarks', 'torch_stylegan2.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return torch, module, module.build(torch)


def _torch_reference():
  pytest.importorskip('torch')  # not a genlab requirement; checked where installed
  return _load_torch_reference()


@pytest.mark.parametrize('impl', sg.MODCONV_IMPLS)
def test_generator_matches_the_reference_in_pytorch(impl):
  """Same parameters -> same images as benchmarks/torch_stylegan2.py, itself checked by hand
  against stylegan2-ada-pytorch's training/networks.py (`python benchmarks/torch_stylegan2.py
  --ref=<checkout>`: its Generator, fused and non-fused modconv, resolutions 8, 16 and 32,
  conv_clamp None and 0.7, and its Discriminator, 'resnet', 'orig' and 'skip', loaded with the
  reference's own random parameters, noise strengths and biases: max relative difference
  2.5e-7). 'const' noise with the const_noise maps as the reference's noise_const buffers;
  an override map, as the projector sets those buffers."""
  torch, module, ref = _torch_reference()
  g = _small_g(16, 3, modconv_impl=impl, conv_clamp=0.7)
  z = _normal((3, 8), seed=4)
  variables = _variables(g, jnp.asarray(z), strength=0.4)
  maps = {name: sg.const_noise(name, hw[0]) for name, hw in g.noise_shapes().items()}
  maps['b16.conv0'] = jnp.asarray(_normal((1, 16, 16, 1), seed=5))
  y = jax.jit(lambda v, z, noise: g.apply(v, g.apply(v, z, method='map'), 'none', noise,
                                          method='synthesize'))(variables, z, maps)
  tg = ref.Generator(8, 8, 16, 3, mapping_layers=2, channel_base=256, channel_max=8,
                     conv_clamp=0.7)
  tg.load_state_dict(module.state_dict_from_flax(torch, variables['params'], maps))
  with torch.no_grad():
    t = tg(torch.tensor(z), noise_mode='const', fused_modconv=impl != 'activation').numpy()
  _close(np.asarray(y).transpose(0, 3, 1, 2), t)


@pytest.mark.parametrize('architecture', sg.D_ARCHITECTURES)
def test_discriminator_matches_the_reference_in_pytorch(architecture):
  torch, module, ref = _torch_reference()
  d = sg.Discriminator(resolution=16, channels=3, channel_base=256, channel_max=8,
                       architecture=architecture, conv_clamp=0.7)
  x = _normal((4, 16, 16, 3), seed=6)
  variables = _variables(d, jnp.asarray(x))
  y = jax.jit(d.apply)(variables, x)
  td = ref.Discriminator(16, 3, architecture, 256, 8, conv_clamp=0.7)
  td.load_state_dict(module.state_dict_from_flax(torch, variables['params']))
  with torch.no_grad():
    t = td(torch.tensor(x.transpose(0, 3, 1, 2))).numpy()[:, 0]
  _close(y, t)
