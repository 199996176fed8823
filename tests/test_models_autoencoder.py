"""The autoencoder networks: the VAE's encoders and decoders with a deterministic code."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab.models import autoencoder as ae_models


@pytest.mark.parametrize('kind, image_shape', [('mlp', (28, 28, 1)), ('conv', (28, 28, 1)),
                                               ('conv', (8, 8, 1)), ('mlp', (32, 32, 3))])
def test_shapes_and_code(kind, image_shape):
  model = ae_models.make_autoencoder(image_shape, kind, latent_dim=5, hidden_dims=(16,),
                                     conv_features=(4, 8), code_activation='sigmoid')
  x = jax.random.uniform(jax.random.key(0), (3, *image_shape))
  params = model.init(jax.random.key(1), x)['params']
  assert 'code' in params['encoder'] and 'mean' not in params['encoder']
  code = model.apply({'params': params}, x, method=model.encode)
  assert code.shape == (3, 5) and code.dtype == jnp.float32
  assert np.all((0 < np.asarray(code)) & (np.asarray(code) < 1))  # sigmoid code
  logits = model.apply({'params': params}, x)
  assert logits.shape == (3, *image_shape)
  np.testing.assert_array_equal(
      logits, model.apply({'params': params}, code, method=model.decode))


def test_one_layer_encoder_has_one_kernel_per_unit():
  """hidden_dims=() is Ng's single hidden layer: the code kernel holds the features."""
  model = ae_models.make_autoencoder((28, 28, 1), 'mlp', latent_dim=7, hidden_dims=())
  params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  assert list(params['encoder']) == ['code']
  assert params['encoder']['code']['kernel'].shape == (784, 7)


def test_linear_code_is_unbounded_and_bad_names_raise():
  model = ae_models.make_autoencoder((8, 8, 1), 'mlp', latent_dim=3, hidden_dims=(8,))
  x = 10 * jax.random.normal(jax.random.key(0), (64, 8, 8, 1))
  params = model.init(jax.random.key(1), x)['params']
  code = np.asarray(model.apply({'params': params}, x, method=model.encode))
  assert code.min() < 0  # no activation on a linear code
  with pytest.raises(ValueError, match='kind'):
    ae_models.make_autoencoder((8, 8, 1), 'rnn')
  with pytest.raises(ValueError, match='code_activation'):
    ae_models.make_autoencoder((8, 8, 1), 'mlp', code_activation='softmax')
