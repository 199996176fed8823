"""Tests for genlab/models/cyclegan.py: CycleGAN's ResnetGenerator and PatchDiscriminator.

Tiny widths and one or two residual blocks keep every case to a small compilation. Inputs
come from numpy, not jax.random (each new shape would cost a threefry compilation on CPU).
"""
import importlib.util
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab.errors import UserError
from genlab.models import cyclegan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _images(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


def _init(module, x):
  """Random variables of the module's shapes: N(0, 0.02) kernels and N(0, 0.05) biases (not
  zero, so that a misplaced bias would show), from numpy.

  Why not module.init: compiling the initialisers costs ~5 s per network on this CPU, ten
  times the network's own compilation; test_initialisation_statistics checks init itself.
  """
  shapes = jax.eval_shape(module.init, jax.random.key(0), x)
  def fill(path, leaf):
    std = 0.02 if path[-1].key == 'kernel' else 0.05
    seed = leaf.size + 7 * len(jax.tree_util.keystr(path))
    return jnp.asarray(std * np.random.default_rng(seed).normal(size=leaf.shape), leaf.dtype)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _apply(module, variables, x):
  return jax.jit(module.apply)(variables, x)


@pytest.mark.parametrize('height,width,c_in,c_out', [
    (28, 28, 1, 1), (30, 30, 3, 3), (33, 33, 1, 3), (28, 33, 3, 1), (30, 28, 1, 1)])
def test_generator_keeps_shape_for_any_size(height, width, c_in, c_out):
  """Sizes that are not multiples of 4 are reflect-padded and cropped back."""
  g = cyclegan.ResnetGenerator(c_out, features=4, num_blocks=1)
  x = _images((2, height, width, c_in))
  y = _apply(g, _init(g, x), x)
  assert y.shape == (2, height, width, c_out) and y.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(y))) <= 1.0 and float(jnp.std(y)) > 0


def test_generator_three_downsamplings_and_no_blocks():
  g = cyclegan.ResnetGenerator(2, features=4, num_blocks=0, num_downsampling=3)
  x = _images((1, 30, 33, 1))
  variables = _init(g, x)
  assert _apply(g, variables, x).shape == (1, 30, 33, 2)
  assert variables['params']['down_2']['kernel'].shape == (3, 3, 16, 32)


def test_generator_layer_names_and_shapes():
  """The paper's c7s1-f, d2f, d4f, R4f..., u2f, uf, c7s1-C; one name for every impl."""
  g = cyclegan.ResnetGenerator(3, features=8, num_blocks=2)
  shapes = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  kernels = {k: v['kernel'].shape for k, v in shapes.items() if 'kernel' in v}
  assert kernels == {'stem': (7, 7, 1, 8), 'down_0': (3, 3, 8, 16), 'down_1': (3, 3, 16, 32),
                     'up_0': (3, 3, 32, 16), 'up_1': (3, 3, 16, 8), 'head': (7, 7, 8, 3)}
  assert shapes['block_1']['conv_1']['kernel'].shape == (3, 3, 32, 32)
  assert all('scale' not in v and 'bias' in v for v in jax.tree.leaves(
      shapes, is_leaf=lambda t: isinstance(t, dict) and 'kernel' in t))  # IN has no affine


@pytest.mark.parametrize('num_layers,out_hw,width', [(1, 12, 16), (2, 5, 32), (3, 1, 64)])
def test_discriminator_shapes(num_layers, out_hw, width):
  d = cyclegan.PatchDiscriminator(features=8, num_layers=num_layers)
  x = _images((2, 28, 28, 3))
  variables = _init(d, x)
  assert _apply(d, variables, x).shape == (2, out_hw, out_hw, 1)
  params = variables['params']
  assert params['conv_0']['kernel'].shape == (4, 4, 3, 8)
  # features * min(2**n, 8): the width is capped at 8x (64 here only for num_layers=3).
  assert params[f'conv_{num_layers}']['kernel'].shape[-1] == min(width, 64)
  assert params[f'conv_{num_layers + 1}']['kernel'].shape[-1] == 1


def test_discriminator_width_capped_at_8x():
  d = cyclegan.PatchDiscriminator(features=2, num_layers=5)
  shapes = jax.eval_shape(d.init, jax.random.key(0), jnp.zeros((1, 128, 128, 1)))['params']
  assert [shapes[f'conv_{i}']['kernel'].shape[-1] for i in range(7)] == [2, 4, 8, 16, 16, 16, 1]


@pytest.mark.parametrize('module', [cyclegan.ResnetGenerator(1, features=4, num_blocks=1),
                                    cyclegan.PatchDiscriminator(features=4, num_layers=2)])
def test_instance_norm_is_per_sample(module):
  """Changing one sample of the batch leaves every other sample's output unchanged."""
  x = _images((3, 30, 30, 1))
  variables = _init(module, x)
  y = _apply(module, variables, x)
  y2 = _apply(module, variables, x.at[1].set(_images((30, 30, 1), seed=5)))
  np.testing.assert_allclose(y2[0], y[0], atol=1e-6)
  np.testing.assert_allclose(y2[2], y[2], atol=1e-6)
  assert float(jnp.max(jnp.abs(y2[1] - y[1]))) > 1e-3


def test_receptive_field_values():
  assert [cyclegan.receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
  with pytest.raises(UserError, match='num_layers'):
    cyclegan.receptive_field(0)


def _local_instance_norm(next_fun, args, kwargs, context):
  """Instance norm with the statistics held constant (stop_gradient).

  Why: the statistics depend on every pixel, so through them every input pixel reaches
  every output; the receptive field of the convolutions is the set the gradient reaches
  through the normalised values alone.
  """
  if not (isinstance(context.module, nn.InstanceNorm) and context.method_name == '__call__'):
    return next_fun(*args, **kwargs)
  x = args[0]
  mean = jax.lax.stop_gradient(jnp.mean(x, axis=(1, 2), keepdims=True))
  var = jax.lax.stop_gradient(jnp.var(x, axis=(1, 2), keepdims=True))
  return (x - mean) * jax.lax.rsqrt(var + context.module.epsilon)


def _influence(d, variables, size, local):
  """The input pixels whose gradient on the central output is non-zero, (size, size) bool."""
  def centre(x):
    if local:
      with nn.intercept_methods(_local_instance_norm):
        y = d.apply(variables, x)
    else:
      y = d.apply(variables, x)
    return y[0, y.shape[1] // 2, y.shape[2] // 2, 0]
  grad = jax.jit(jax.grad(centre))(_images((1, size, size, 1)))
  return np.asarray(jnp.abs(grad[0, :, :, 0]) > 0)


@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_receptive_field_measured(num_layers):
  """Measured on the module: the pixels that one central output depends on form a square of
  side receptive_field(num_layers), away from the border (so padding does not clip it)."""
  rf = cyclegan.receptive_field(num_layers)
  size = rf + 24
  d = cyclegan.PatchDiscriminator(features=2, num_layers=num_layers)
  variables = _init(d, jnp.zeros((1, size, size, 1)))
  mask = _influence(d, variables, size, local=True)
  rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
  assert rows[0] > 0 and cols[0] > 0 and rows[-1] < size - 1 and cols[-1] < size - 1
  assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == (rf, rf)
  assert mask.sum() == rf * rf  # the whole square, no holes
  if num_layers == 1:  # why the statistics are held constant above: they reach everything
    assert _influence(d, variables, size, local=False).all()


def _grads(module, variables, x, cot):
  def fwd_bwd(params, x):
    y, vjp = jax.vjp(lambda p, x: module.apply({'params': p}, x), params, x)
    return y, vjp(cot)
  return jax.jit(fwd_bwd)(variables['params'], x)


def _assert_close(a, b, atol):
  """Equal up to float32 summation order, relative to the largest value of the whole tree.

  Why one scale for the tree: a conv bias followed by instance norm has a zero gradient in
  exact arithmetic (the norm subtracts it again), so its computed gradient is rounding noise
  of the size of the other gradients' rounding, not of its own.
  """
  scale = max(1.0, max(float(np.abs(np.asarray(leaf)).max()) for leaf in jax.tree.leaves(a)))
  for ref, new in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(new), np.asarray(ref), rtol=0, atol=atol * scale)


@pytest.mark.parametrize('conv_transpose_impl,conv_impl', [('fast', 'xla'),
                                                           ('fast', 'matmul'),
                                                           ('xla', 'space_to_depth')])
def test_generator_impls_same_function(conv_transpose_impl, conv_impl):
  """Every impl has the same parameters, outputs and gradients (input and parameters) as
  ('xla', 'xla'); 30x30 also runs the pad-and-crop path."""
  ref = cyclegan.ResnetGenerator(3, features=4, num_blocks=1, conv_transpose_impl='xla')
  new = cyclegan.ResnetGenerator(3, features=4, num_blocks=1,
                                 conv_transpose_impl=conv_transpose_impl, conv_impl=conv_impl)
  x = _images((2, 30, 30, 3))
  variables = _init(ref, x)
  assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, _init(new, x))
  cot = _images((2, 30, 30, 3), seed=3)
  _assert_close(_grads(ref, variables, x, cot), _grads(new, variables, x, cot), 1e-5)


@pytest.mark.parametrize('conv_impl', ['matmul', 'space_to_depth'])
def test_discriminator_impls_same_function(conv_impl):
  ref = cyclegan.PatchDiscriminator(features=4, num_layers=2)
  new = cyclegan.PatchDiscriminator(features=4, num_layers=2, conv_impl=conv_impl)
  x = _images((2, 29, 29, 1))
  variables = _init(ref, x)
  cot = _images((2, 5, 5, 1), seed=3)
  _assert_close(_grads(ref, variables, x, cot), _grads(new, variables, x, cot), 1e-5)


def test_unknown_impl_is_a_user_error():
  g = cyclegan.ResnetGenerator(1, features=4, num_blocks=0, conv_transpose_impl='subpixel')
  with pytest.raises(UserError, match='model.conv_transpose_impl'):
    jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))


def test_initialisation_statistics():
  """init_weights('normal', 0.02): kernels N(0, 0.02), biases zero; no norm parameters."""
  g = cyclegan.ResnetGenerator(1, features=16, num_blocks=1)
  d = cyclegan.PatchDiscriminator(features=16, num_layers=2)
  x = jnp.zeros((1, 28, 28, 1))
  init = jax.jit(lambda key: (g.init(key, x)['params'], d.init(key, x)['params']))
  for params in init(jax.random.key(0)):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    kernels = np.concatenate([np.ravel(v) for p, v in flat if p[-1].key == 'kernel'])
    biases = [v for p, v in flat if p[-1].key == 'bias']
    assert {p[-1].key for p, _ in flat} == {'kernel', 'bias'}
    assert kernels.size > 10_000
    assert abs(kernels.std() - 0.02) < 0.001 and abs(kernels.mean()) < 0.001
    assert all(not np.any(b) for b in biases)


def _torch_networks():
  torch = pytest.importorskip('torch')  # not a genlab requirement; checked where installed
  spec = importlib.util.spec_from_file_location(
      'torch_cyclegan', os.path.join(ROOT, 'benchmarks', 'torch_cyclegan.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return torch, module.build(torch)


def _to_torch(torch, params, transposed=()):
  """flax kernels (kh, kw, in, out) -> torch weights, in the modules' order."""
  weights = []
  for name, p in params:
    k = np.asarray(p['kernel'])
    if name in transposed:  # ConvTranspose2d (in, out, kh, kw), as the module docstring says
      w = np.flip(k.transpose(2, 3, 0, 1), (2, 3))
    else:                   # Conv2d (out, in, kh, kw)
      w = k.transpose(3, 2, 0, 1)
    weights += [torch.tensor(np.ascontiguousarray(w)), torch.tensor(np.asarray(p['bias']))]
  return weights


def _load(torch, net, weights):
  with torch.no_grad():
    params = list(net.parameters())
    assert [tuple(p.shape) for p in params] == [tuple(w.shape) for w in weights]
    for p, w in zip(params, weights):
      p.copy_(w)


def test_matches_official_pytorch_networks():
  """Same parameters -> same outputs as the official networks.py modules (in PyTorch)."""
  torch, (generator, discriminator) = _torch_networks()
  g = cyclegan.ResnetGenerator(3, features=4, num_blocks=2)
  x = _images((2, 28, 28, 1))
  params = _init(g, x)['params']
  order = ['stem', 'down_0', 'down_1', 'block_0', 'block_1', 'up_0', 'up_1', 'head']
  named = []
  for name in order:
    if name.startswith('block'):
      named += [(name, params[name]['conv_0']), (name, params[name]['conv_1'])]
    else:
      named.append((name, params[name]))
  net = generator(1, 3, ngf=4, n_blocks=2)
  _load(torch, net, _to_torch(torch, named, transposed=('up_0', 'up_1')))
  y = g.apply({'params': params}, x)
  y_torch = net(torch.tensor(np.asarray(x).transpose(0, 3, 1, 2))).detach().numpy()
  np.testing.assert_allclose(np.asarray(y), y_torch.transpose(0, 2, 3, 1), atol=1e-5)

  d = cyclegan.PatchDiscriminator(features=4, num_layers=2)
  params = _init(d, x)['params']
  net = discriminator(1, ndf=4, n_layers=2)
  _load(torch, net, _to_torch(torch, [(f'conv_{i}', params[f'conv_{i}']) for i in range(4)]))
  y = d.apply({'params': params}, x)
  y_torch = net(torch.tensor(np.asarray(x).transpose(0, 3, 1, 2))).detach().numpy()
  np.testing.assert_allclose(np.asarray(y), y_torch.transpose(0, 2, 3, 1), atol=1e-5)
