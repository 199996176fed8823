"""Tests for genlab/models/layers.py: the sub-pixel / space-to-depth layers equal flax's.

Each case checks that the flax layer and ours have the same parameter tree, then feeds both
the same random parameters and compares outputs and the gradients with respect to the input,
the kernel and the bias through a random cotangent. `test_same_initialisation` checks that the
same key gives the same parameters.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from genlab.errors import UserError
from genlab.models import layers

C_IN, C_OUT, BATCH = 3, 5, 2


def _np_normal(shape, seed):
  # numpy, not jax.random: each new shape would cost a ~2 s threefry compilation on CPU.
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _x(shape, seed=1):
  return jnp.asarray(_np_normal(shape, seed))


def _compare(ref_layer, new_layer, x, atol=1e-5):
  """Asserts the same parameter tree, equal outputs and equal input/param gradients."""
  shapes = jax.eval_shape(ref_layer.init, jax.random.key(0), x)
  assert shapes == jax.eval_shape(new_layer.init, jax.random.key(0), x)
  # Random parameters, a non-zero bias included, so a misplaced bias or tap would show.
  params = jax.tree.map(lambda a: jnp.asarray(_np_normal(a.shape, a.size)), shapes['params'])
  y_shape = jax.eval_shape(ref_layer.apply, {'params': params}, x)
  cot = _np_normal(y_shape.shape, 2)

  def run(layer):
    def fwd_bwd(params, x, cot):
      y, vjp = jax.vjp(lambda p, x: layer.apply({'params': p}, x), params, x)
      return y, vjp(cot.astype(y.dtype))
    return jax.jit(fwd_bwd)(params, x, cot)  # one compilation, not one per primitive (eager)

  (y_ref, (gp_ref, gx_ref)), (y_new, (gp_new, gx_new)) = run(ref_layer), run(new_layer)
  assert y_new.shape == y_ref.shape and y_new.dtype == y_ref.dtype
  for ref, new in [(y_ref, y_new), (gx_ref, gx_new), *zip(jax.tree.leaves(gp_ref),
                                                            jax.tree.leaves(gp_new))]:
    ref, new = np.asarray(ref, np.float32), np.asarray(new, np.float32)
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(new, ref, rtol=0, atol=atol * scale)
  return y_new


@pytest.mark.parametrize('ref,new', [(nn.ConvTranspose, layers.SubPixelConvTranspose),
                                     (nn.Conv, layers.SpaceToDepthConv)])
def test_same_initialisation(ref, new):
  """Same names, shapes and default initialisers: the same key gives the same parameters."""
  x = jnp.zeros((1, 7, 7, 2))
  kw = dict(features=3, kernel_size=(4, 4), strides=(2, 2))
  ref_params = ref(**kw).init(jax.random.key(0), x)['params']
  new_params = new(**kw).init(jax.random.key(0), x)['params']
  assert set(new_params) == {'kernel', 'bias'}
  jax.tree.map(np.testing.assert_array_equal, ref_params, new_params)
  assert float(jnp.std(new_params['kernel'])) > 0.1           # not all zeros


# DCGAN (k4 s2 SAME, 7->14->28, 4->8), k5 and k3, odd and even inputs, a stride 3, VALID and
# explicit padding; the DCGAN shapes with both sub-pixel forms, the others with one each.
@pytest.mark.parametrize('k,s,n,padding,fuse', [
    (4, 2, 7, 'SAME', False), (4, 2, 7, 'SAME', True), (4, 2, 4, 'SAME', False),
    (4, 2, 4, 'SAME', True), (4, 2, 14, 'SAME', False), (5, 2, 7, 'SAME', True),
    (5, 2, 8, 'SAME', False), (3, 2, 7, 'SAME', False), (3, 2, 4, 'SAME', True),
    (4, 3, 5, 'SAME', False), (2, 3, 4, 'SAME', False), (4, 2, 7, 'VALID', True),
    (3, 2, 6, ((1, 2), (0, 1)), False), (4, 2, 5, 1, True)])
def test_conv_transpose_matches_flax(k, s, n, padding, fuse):
  kw = dict(features=C_OUT, kernel_size=(k, k), strides=(s, s), padding=padding)
  y = _compare(nn.ConvTranspose(**kw), layers.SubPixelConvTranspose(**kw, fuse_phases=fuse),
               _x((BATCH, n, n + 1, C_IN)))
  if padding == 'SAME':
    assert y.shape == (BATCH, s * n, s * (n + 1), C_OUT)


@pytest.mark.parametrize('k,s,n,padding', [
    (4, 2, 28, 'SAME'), (4, 2, 14, 'SAME'), (4, 2, 7, 'SAME'), (5, 2, 7, 'SAME'),
    (3, 2, 8, 'SAME'), (3, 1, 7, 'SAME'), (4, 3, 8, 'SAME'), (4, 2, 9, 'VALID'),
    (4, 2, 7, 1), (3, 2, 7, 'CIRCULAR'), (4, 2, 8, 'REFLECT')])
def test_conv_matches_flax(k, s, n, padding):
  kw = dict(features=C_OUT, kernel_size=(k, k), strides=(s, s), padding=padding)
  _compare(nn.Conv(**kw), layers.SpaceToDepthConv(**kw), _x((BATCH, n, n + 1, C_IN)))


def test_no_bias_transpose_kernel_1d_and_extra_batch_axes():
  kw = dict(features=C_OUT, kernel_size=(4, 3), strides=(2, 3), use_bias=False,
            transpose_kernel=True)
  _compare(nn.ConvTranspose(**kw), layers.SubPixelConvTranspose(**kw, fuse_phases=False),
           _x((BATCH, 5, 4, C_IN)))
  kw1 = dict(features=C_OUT, kernel_size=(4,), strides=(2,))
  _compare(nn.ConvTranspose(**kw1), layers.SubPixelConvTranspose(**kw1), _x((BATCH, 9, C_IN)))
  _compare(nn.Conv(**kw1), layers.SpaceToDepthConv(**kw1), _x((BATCH, 9, C_IN)))
  kw2 = dict(features=C_OUT, kernel_size=(4, 4), strides=(2, 2))
  y = _compare(nn.Conv(**kw2), layers.SpaceToDepthConv(**kw2), _x((3, BATCH, 6, 6, C_IN)))
  assert y.shape == (3, BATCH, 3, 3, C_OUT)
  _compare(nn.ConvTranspose(**kw2), layers.SubPixelConvTranspose(**kw2), _x((6, 6, C_IN)))


def test_fuse_phases_default():
  """Per-phase convs from FUSE_PHASES_BELOW output features up, one fused conv below."""
  x, w = _x((1, 4, 4, 2)), _x((4, 4, 2, layers.FUSE_PHASES_BELOW), seed=3)
  def n_convs(w):
    jaxpr = jax.make_jaxpr(lambda x, w: layers.subpixel_conv_transpose(x, w, (2, 2)))(x, w)
    return sum(e.primitive.name in ('conv_general_dilated', 'dot_general') for e in jaxpr.eqns)
  assert n_convs(w) == 4
  assert n_convs(w[..., :layers.FUSE_PHASES_BELOW - 1]) == 1


def test_negative_padding_crops():
  """Negative padding crops the input. lax.conv_general_dilated gets this wrong on XLA CPU
  (jax 0.10.2), so the reference for the conv is the same conv of the cropped input."""
  x, w = _x((BATCH, 9, 8, C_IN)), _x((4, 4, C_IN, C_OUT), seed=3)
  pads = ((-1, 2), (2, -1))
  ref = lax.conv_general_dilated(x[:, 1:, :-1], w, (2, 2), ((0, 2), (2, 0)),
                                 dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(layers.space_to_depth_conv(x, w, (2, 2), pads), ref, atol=1e-5)
  ref_t = lax.conv_transpose(x, w, (2, 2), pads)   # lhs-dilated conv: correct on CPU
  for fuse in (False, True):
    np.testing.assert_allclose(layers.subpixel_conv_transpose(x, w, (2, 2), pads,
                                                              fuse_phases=fuse), ref_t, atol=1e-5)


@pytest.mark.parametrize('which', ['conv_transpose', 'conv'])
def test_bfloat16_compute(which):
  kw = dict(features=C_OUT, kernel_size=(4, 4), strides=(2, 2), dtype=jnp.bfloat16)
  ref, new = ((nn.ConvTranspose(**kw), layers.SubPixelConvTranspose(**kw))
              if which == 'conv_transpose' else (nn.Conv(**kw), layers.SpaceToDepthConv(**kw)))
  x = _x((BATCH, 8, 8, C_IN))
  shapes = jax.eval_shape(new.init, jax.random.key(0), x)['params']
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(shapes))  # params stay float32
  params = jax.tree.map(lambda a: jnp.asarray(_np_normal(a.shape, 3)), shapes)
  y = new.apply({'params': params}, x)
  assert y.dtype == jnp.bfloat16
  # bfloat16 has 8 bits of mantissa: the two summation orders agree to ~1e-2 of the scale.
  y_ref = ref.apply({'params': params}, x).astype(jnp.float32)
  np.testing.assert_allclose(y.astype(jnp.float32), y_ref, atol=3e-2 * float(jnp.abs(y_ref).max()))


@pytest.mark.parametrize('which', ['conv_transpose', 'conv'])
def test_inside_spectral_norm(which):
  kw = dict(features=C_OUT, kernel_size=(4, 4), strides=(2, 2))
  ref, new = ((nn.ConvTranspose(**kw), layers.SubPixelConvTranspose(**kw))
              if which == 'conv_transpose' else (nn.Conv(**kw), layers.SpaceToDepthConv(**kw)))
  x = _x((BATCH, 7, 7, C_IN))
  out = []
  for layer in (ref, new):
    sn = nn.SpectralNorm(layer, n_steps=3)
    variables = sn.init(jax.random.key(0), x, update_stats=True)

    def loss(params, variables=variables, sn=sn):
      y, state = sn.apply({**variables, 'params': params}, x, update_stats=True,
                          mutable=['batch_stats'])
      return jnp.sum(y ** 2), (y, state)

    grads, (y, state) = jax.grad(loss, has_aux=True)(variables['params'])
    out.append((variables, y, state, grads))
  (v_ref, y_ref, s_ref, g_ref), (v_new, y_new, s_new, g_new) = out
  jax.tree.map(np.testing.assert_array_equal, v_ref, v_new)
  np.testing.assert_allclose(y_new, y_ref, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), s_ref, s_new)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), g_ref, g_new)
  # The layer really was normalised: its output differs from the raw layer's.
  y_raw = new.apply({'params': v_new['params']['layer_instance']}, x)
  assert not np.allclose(y_raw, y_new, atol=1e-3)


def test_factories():
  kw = dict(features=4, kernel_size=(4, 4), strides=(2, 2))
  assert type(layers.conv_transpose('xla', **kw)) is nn.ConvTranspose
  assert type(layers.conv_transpose('subpixel', **kw)) is layers.SubPixelConvTranspose
  assert type(layers.conv('xla', **kw)) is nn.Conv
  assert type(layers.conv('space_to_depth', **kw)) is layers.SpaceToDepthConv
  with pytest.raises(UserError, match=r"config.model.conv_transpose_impl='fast'.*'subpixel'"):
    layers.conv_transpose('fast', **kw)
  with pytest.raises(UserError, match=r"config.d.impl='subpixel'.*'space_to_depth'"):
    layers.conv('subpixel', config_key='d.impl', **kw)


def test_unsupported_options_raise_user_error():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(UserError, match='kernel_dilation'):
    layers.SubPixelConvTranspose(2, (3, 3), (2, 2), kernel_dilation=(2, 2)).init(
        jax.random.key(0), x)
  with pytest.raises(UserError, match='CIRCULAR'):
    layers.SubPixelConvTranspose(2, (3, 3), (2, 2), padding='CIRCULAR').init(
        jax.random.key(0), x)
  with pytest.raises(UserError, match='feature_group_count'):
    layers.SpaceToDepthConv(2, (3, 3), (2, 2), feature_group_count=2).init(
        jax.random.key(0), jnp.zeros((1, 4, 4, 2)))


@pytest.mark.parametrize('shape, k, s, padding', [
    ((2, 14, 14, 6), 4, 2, 'SAME'), ((2, 7, 7, 5), 3, 1, 'SAME'), ((2, 9, 8, 3), 5, 2, 'VALID'),
    ((2, 7, 7, 4), 2, 1, [(1, 0), (0, 1)])])
def test_matmul_conv_equals_nn_conv_with_gradients(shape, k, s, padding):
  x = jax.random.normal(jax.random.key(0), shape)
  ref = nn.Conv(7, (k, k), strides=(s, s), padding=padding)
  mine = layers.MatmulConv(7, (k, k), strides=(s, s), padding=padding)
  params = ref.init(jax.random.key(1), x)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, mine.init(jax.random.key(1), x))
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  np.testing.assert_allclose(mine.apply(params, x), ref.apply(params, x), atol=1e-5)
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  g_mine = jax.grad(loss(mine), argnums=(0, 1))(params, x)
  for a, b in zip(jax.tree.leaves(g_mine), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, atol=1e-4)
