"""Tests for genlab/models/vae.py: output shapes, parameter counts, likelihood heads."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab.models import vae


def _init_apply(model, image_shape, latent_dim, lead=(3, 2)):
  x = jnp.zeros((2, *image_shape))
  params = model.init(jax.random.key(0), x, jnp.zeros((2, latent_dim)))['params']
  mean, logvar = model.apply({'params': params}, x, method=model.encode)
  z = jax.random.normal(jax.random.key(1), (*lead, latent_dim))
  return params, mean, logvar, model.apply({'params': params}, z, method=model.decode)


@pytest.mark.parametrize('kind', ['mlp', 'conv'])
@pytest.mark.parametrize('image_shape', [(28, 28, 1), (8, 8, 1), (32, 32, 3), (7, 5, 2)])
@pytest.mark.parametrize('likelihood', ['bernoulli', 'gaussian'])
def test_shapes(kind, image_shape, likelihood):
  model = vae.make_vae(image_shape, kind, latent_dim=3, hidden_dims=(8,), conv_features=(4, 8),
                       likelihood=likelihood)
  # Traced, not run: shapes only (the numerics are tested on the tiny variants below).
  _, mean, logvar, dec = jax.eval_shape(lambda: _init_apply(model, image_shape, 3))
  assert mean.shape == logvar.shape == (2, 3)
  if likelihood == 'bernoulli':
    assert set(dec) == {'logits'} and dec['logits'].shape == (3, 2, *image_shape)
  else:
    assert set(dec) == {'mean', 'log_scale'}
    assert dec['mean'].shape == (3, 2, *image_shape)
    assert dec['log_scale'].shape == image_shape              # learned per pixel


def test_gaussian_global_scale_and_floor():
  model = vae.VAE(vae.TinyMLPEncoder(),
                  vae.TinyMLPDecoder((8, 8, 1), likelihood='gaussian', gaussian_scale='global',
                                     min_log_scale=-2.0))
  params, _, _, dec = jax.jit(lambda: _init_apply(model, (8, 8, 1), 2))()
  assert dec['log_scale'].shape == ()
  params['decoder']['ObservationHead_0']['log_scale'] = jnp.asarray(-9.0)
  dec = jax.jit(model.apply, static_argnames='method')(
      {'params': params}, jnp.zeros((1, 2)), method=model.decode)
  assert float(dec['log_scale']) == -2.0


def test_burda_mlp_has_the_papers_parameter_count():
  model = vae.VAE(vae.BurdaEncoder(), vae.BurdaDecoder((28, 28, 1)))
  params, *_ = jax.eval_shape(lambda: _init_apply(model, (28, 28, 1), 50))
  count = lambda tree: sum(p.size for p in jax.tree.leaves(tree))
  # 784-200-200-(50 means, 50 log-variances) and 50-200-200-784.
  assert count(params['encoder']) == 784 * 200 + 200 + 200 * 200 + 200 + 2 * (200 * 50 + 50)
  assert count(params['decoder']) == 50 * 200 + 200 + 200 * 200 + 200 + 200 * 784 + 784
  assert model == vae.make_vae((28, 28, 1), 'mlp', 50, (200, 200))


def test_tiny_conv_variant_and_reparameterised_call():
  model = vae.VAE(vae.TinyConvEncoder(), vae.TinyConvDecoder((8, 8, 1)))

  @jax.jit
  def run(x):
    params = model.init(jax.random.key(0), x, jnp.zeros((4, 2)))['params']
    dec = model.apply({'params': params}, x, jnp.zeros((4, 2)))
    mean, _ = model.apply({'params': params}, x, method=model.encode)
    return dec, model.apply({'params': params}, mean, method=model.decode)  # eps = 0: z = mean

  dec, expected = run(jnp.ones((4, 8, 8, 1)))
  np.testing.assert_allclose(dec['logits'], expected['logits'], rtol=1e-6)
  assert dec['logits'].shape == (4, 8, 8, 1) and np.all(np.isfinite(dec['logits']))


def test_unknown_kind_raises():
  with pytest.raises(ValueError, match='kind'):
    vae.make_vae((8, 8, 1), 'rnn')


@pytest.mark.parametrize('kind', ['mlp', 'conv'])
def test_bfloat16_compute_keeps_float32_params_and_outputs(kind):
  model = vae.make_vae((8, 8, 1), kind=kind, latent_dim=2, hidden_dims=(16,),
                       conv_features=(4, 8), dtype=jnp.bfloat16)
  x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
  params = model.init(jax.random.key(1), x, jnp.zeros((3, 2)))['params']
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
  mean, logvar = model.apply({'params': params}, x, method=model.encode)
  logits = model.apply({'params': params}, mean, method=model.decode)['logits']
  assert mean.dtype == logvar.dtype == logits.dtype == jnp.float32
  # bfloat16 compute differs from float32 compute, but only at bfloat16 precision.
  model32 = vae.make_vae((8, 8, 1), kind=kind, latent_dim=2, hidden_dims=(16,),
                         conv_features=(4, 8))
  logits32 = model32.apply({'params': params}, mean, method=model32.decode)['logits']
  assert not np.array_equal(logits, logits32)
  np.testing.assert_allclose(logits, logits32, atol=0.1)


def test_upsampling_is_nearest_neighbour_resize():
  h = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
  np.testing.assert_array_equal(vae.upsample_nearest_2x(h),
                                jax.image.resize(h, (2, 6, 8, 5), 'nearest'))
