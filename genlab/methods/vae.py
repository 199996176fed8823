"""Variational autoencoder (Kingma & Welling 2014) with the IWAE protocol of Burda et al. 2016.

Training maximises the ELBO with the reparameterisation trick and the analytic Gaussian KL
(Kingma & Welling 2014, Eq. 10) when `config.train.num_importance_samples` is 1, and the
importance-weighted bound (Burda et al. 2016, Eq. 8) when it is k > 1. All quantities are in
nats per example (summed over pixels), reported as positive numbers:

  train_step  means over the batch:  loss (the minimised -bound), neg_elbo, recon_nll, kl,
              grad_norm (before clipping), learning_rate
  eval_step   sums over mask == 1:    neg_elbo  -ELBO, one z sample and the analytic KL
                                      recon_nll -log p(x|z), one z ~ q(z|x)
                                      kl        KL(q(z|x) || p(z)), analytic
                                      nll       -IWAE bound, k = config.eval.num_importance_samples
  test_step   the same, with nll at k = config.eval.test_num_importance_samples (the reported
              test NLL; Burda et al. use k=5000), drawn in chunks of config.eval.importance_chunk.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from genlab import data as data_lib
from genlab import methods
from genlab import optim
from genlab.config_checks import count
from genlab import viz
from genlab.errors import int_at_least, one_of

# Ranges of this method's config keys (genlab/config_checks.py).
CONFIG_RANGES = {
    'model.latent_dim': count(), 'model.hidden_dims': count(), 'model.conv_features': count(),
    '*num_importance_samples': count(), 'eval.importance_chunk': count(),
    'viz.num_samples': count(), 'viz.grid_size': count(),
}
from genlab.metrics import anomaly
from genlab.metrics import likelihood
from genlab.models import vae as vae_models


def _positive_int(value, key):
  return int_at_least(value, 1, key)


# -- construction --------------------------------------------------------------------------
def build_model(config: ml_collections.ConfigDict, image_shape) -> vae_models.VAE:
  model = methods.section(config, 'model')
  return vae_models.make_vae(
      image_shape,
      kind=one_of(model.get('kind', 'mlp'), ('mlp', 'conv'), 'model.kind'),
      latent_dim=_positive_int(model.get('latent_dim', 50), 'model.latent_dim'),
      hidden_dims=tuple(model.get('hidden_dims', (200, 200))),
      conv_features=tuple(model.get('conv_features', (32, 64))),
      likelihood=one_of(model.get('decoder', 'bernoulli'), vae_models.LIKELIHOODS,
                         'model.decoder'),
      gaussian_scale=one_of(model.get('gaussian_scale', 'per_pixel'),
                             vae_models.GAUSSIAN_SCALES, 'model.gaussian_scale'),
      min_log_scale=float(model.get('min_log_scale', -5.0)),
      dtype=jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'),
                              'model.dtype')))


# -- the objective ---------------------------------------------------------------------------
def log_likelihood(dec: dict, x_BxHxWxC: jax.Array) -> jax.Array:
  """log p(x|z) summed over pixels; `dec` may have leading sample axes, e.g. K x B."""
  if 'logits' in dec:
    return likelihood.bernoulli_log_likelihood(x_BxHxWxC, dec['logits'])
  return likelihood.gaussian_log_likelihood(x_BxHxWxC, dec['mean'], dec['log_scale'])


def decoder_mean(dec: dict) -> jax.Array:
  """E[x|z] as an image in [0, 1]: Bernoulli probabilities or the clipped Gaussian mean."""
  if 'logits' in dec:
    return jax.nn.sigmoid(dec['logits'])
  return jnp.clip(dec['mean'], 0.0, 1.0)


def reparameterize(key, mean_BxZ, logvar_BxZ, num_samples: int) -> jax.Array:
  """z_KxBxZ = mean + exp(logvar / 2) * eps, eps ~ N(0, I) (Kingma & Welling 2014, Eq. 4)."""
  eps_KxBxZ = jax.random.normal(key, (num_samples, *mean_BxZ.shape), mean_BxZ.dtype)
  return mean_BxZ + jnp.exp(0.5 * logvar_BxZ) * eps_KxBxZ


def _log_weights(model, params, x_BxHxWxC, mean_BxZ, logvar_BxZ, z_KxBxZ):
  """log w = log p(x|z) + log p(z) - log q(z|x) (Burda et al. 2016, Eq. 8) -> (K, B) twice."""
  dec = model.apply({'params': params}, z_KxBxZ, method=model.decode)
  log_px_KxB = log_likelihood(dec, x_BxHxWxC)
  log_pz_KxB = likelihood.log_normal_diag(z_KxBxZ)
  log_qz_KxB = likelihood.log_normal_diag(z_KxBxZ, mean_BxZ, logvar_BxZ)
  return log_px_KxB + log_pz_KxB - log_qz_KxB, log_px_KxB


def objective(model, params, x_BxHxWxC, key, num_samples: int = 1):
  """The per-example bound to maximise -> (bound_B, {'recon_nll_B', 'kl_B'}).

  k=1: the ELBO E_q[log p(x|z)] - KL(q(z|x) || p(z)) with one reparameterised sample and the
  analytic KL (Kingma & Welling 2014, Eq. 10). k>1: the IWAE bound (Burda et al. 2016, Eq. 8).
  recon_nll_B averages -log p(x|z) over the k samples; kl_B is always the analytic KL.
  """
  mean_BxZ, logvar_BxZ = model.apply({'params': params}, x_BxHxWxC, method=model.encode)
  z_KxBxZ = reparameterize(key, mean_BxZ, logvar_BxZ, num_samples)
  log_w_KxB, log_px_KxB = _log_weights(model, params, x_BxHxWxC, mean_BxZ, logvar_BxZ, z_KxBxZ)
  kl_B = likelihood.gaussian_kl(mean_BxZ, logvar_BxZ)
  if num_samples == 1:
    bound_B = log_px_KxB[0] - kl_B
  else:
    bound_B = likelihood.iwae_bound(log_w_KxB)
  return bound_B, {'recon_nll_B': -jnp.mean(log_px_KxB, axis=0), 'kl_B': kl_B}


def iwae_nll(model, params, x_BxHxWxC, key, num_samples: int, chunk_size: int) -> jax.Array:
  """-IWAE bound with k = num_samples (Burda et al. 2016, Eq. 8), in chunks -> (B,).

  Chunk i draws its samples with fold_in(key, i); q(z|x) is computed once.
  """
  mean_BxZ, logvar_BxZ = model.apply({'params': params}, x_BxHxWxC, method=model.encode)

  def log_weights_fn(i, n):
    z_NxBxZ = reparameterize(jax.random.fold_in(key, i), mean_BxZ, logvar_BxZ, n)
    return _log_weights(model, params, x_BxHxWxC, mean_BxZ, logvar_BxZ, z_NxBxZ)[0]

  return -likelihood.streaming_iwae_bound(log_weights_fn, num_samples, chunk_size)


# -- the method ------------------------------------------------------------------------------
def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  image_shape = tuple(int(d) for d in data_info.image_shape)
  model = build_model(config, image_shape)
  latent_dim = model.encoder.latent_dim
  tx, schedule = optim.make_optimizer(config)
  train_k = _positive_int(methods.section(config, 'train').get('num_importance_samples', 1),
                          'train.num_importance_samples')
  ev = methods.section(config, 'eval')
  eval_k = _positive_int(ev.get('num_importance_samples', 100), 'eval.num_importance_samples')
  test_k = _positive_int(ev.get('test_num_importance_samples', 5000),
                         'eval.test_num_importance_samples')
  chunk = _positive_int(ev.get('importance_chunk', 500), 'eval.importance_chunk')
  vz = methods.section(config, 'viz')
  num_viz_samples = _positive_int(vz.get('num_samples', 64), 'viz.num_samples')
  grid_size = _positive_int(vz.get('grid_size', 20), 'viz.grid_size')
  interp_rows = _positive_int(vz.get('interpolation_rows', 8), 'viz.interpolation_rows')
  interp_steps = _positive_int(vz.get('interpolation_steps', 10), 'viz.interpolation_steps')

  def init(key):
    x = jnp.zeros((1, *image_shape), jnp.float32)
    params = model.init(key, x, jnp.zeros((1, latent_dim), jnp.float32))['params']
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

  def train_step(state, batch, key):
    x_BxHxWxC = batch['image']

    def loss_fn(params):
      bound_B, parts = objective(model, params, x_BxHxWxC, key, train_k)
      return -jnp.mean(bound_B), parts

    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    recon_nll, kl = jnp.mean(parts['recon_nll_B']), jnp.mean(parts['kl_B'])
    metrics = {'loss': loss, 'neg_elbo': recon_nll + kl, 'recon_nll': recon_nll, 'kl': kl,
               'grad_norm': optax.global_norm(grads),
               'learning_rate': jnp.asarray(schedule(state.step), jnp.float32)}
    return state.apply_gradients(grads=grads), metrics

  def evaluate(state, batch, key, num_samples):
    x_BxHxWxC = batch['image']
    mask_B = batch.get('mask', jnp.ones(x_BxHxWxC.shape[:1], jnp.float32))
    elbo_key, iwae_key = jax.random.split(key)
    bound_B, parts = objective(model, state.params, x_BxHxWxC, elbo_key, 1)
    per_example = {'neg_elbo': -bound_B, 'recon_nll': parts['recon_nll_B'], 'kl': parts['kl_B'],
                   'nll': iwae_nll(model, state.params, x_BxHxWxC, iwae_key, num_samples, chunk)}
    # where, not a product: a padded row must not turn the sum into nan.
    return {name: jnp.sum(jnp.where(mask_B > 0, v_B, 0.0)) for name, v_B in per_example.items()}

  def sample(state, key, n):
    z_NxZ = jax.random.normal(key, (n, latent_dim), jnp.float32)
    dec = model.apply({'params': state.params}, z_NxZ, method=model.decode)
    return decoder_mean(dec).astype(jnp.float32)

  @jax.jit
  def encode_mean(params, x_BxHxWxC):
    return model.apply({'params': params}, x_BxHxWxC, method=model.encode)[0]

  @jax.jit
  def decode_mean(params, z_NxZ):
    return decoder_mean(model.apply({'params': params}, z_NxZ, method=model.decode))

  sample_jit = jax.jit(sample, static_argnums=2)

  def visualize(state, key, batch):
    """Samples, input/reconstruction row pairs, latent interpolations, the 2-D manifold."""
    images = np.asarray(batch['image'], np.float32)
    if 'mask' in batch:
      images = images[np.asarray(batch['mask']) > 0]
    params = state.params
    grids = {'samples': viz.image_grid(np.asarray(sample_jit(state, key, num_viz_samples)),
                                       ncols=math.ceil(math.sqrt(num_viz_samples)))}
    if len(images):
      ncols = min(8, len(images))
      rows = min(4, len(images) // ncols)
      x = images[:rows * ncols]
      recon = np.asarray(decode_mean(params, encode_mean(params, x)))
      pairs = np.stack([x.reshape(rows, ncols, *image_shape),
                        recon.reshape(rows, ncols, *image_shape)], axis=1)
      grids['reconstructions'] = viz.image_grid(pairs.reshape(-1, *image_shape), ncols)
    if len(images) >= 2:
      r = min(interp_rows, len(images) // 2)
      z_2RxZ = encode_mean(params, images[:2 * r])
      t_T = jnp.linspace(0.0, 1.0, interp_steps)[None, :, None]
      z_RxTxZ = z_2RxZ[:r, None] * (1.0 - t_T) + z_2RxZ[r:, None] * t_T
      frames = np.asarray(decode_mean(params, z_RxTxZ.reshape(-1, latent_dim)))
      strips = np.concatenate([images[:r, None], frames.reshape(r, interp_steps, *image_shape),
                               images[r:2 * r, None]], axis=1)
      grids['interpolation'] = viz.interpolation_strip(strips)
    if latent_dim == 2:
      manifold = decode_mean(params, jnp.asarray(viz.manifold_latents(grid_size)))
      grids['manifold'] = viz.image_grid(np.asarray(manifold), ncols=grid_size)
    return grids

  @jax.jit
  def neg_elbo(params, x_BxHxWxC, key):
    """-ELBO per example, averaged over 8 draws of z ~ q(z|x) to tame its variance."""
    draws = [objective(model, params, x_BxHxWxC, jax.random.fold_in(key, i))[0]
             for i in range(8)]
    return -jnp.mean(jnp.stack(draws), axis=0)

  held_out = data_lib.held_out_labels(config)

  def analyze(state, key, arrays):
    """Anomaly detection: the held-out classes scored by -ELBO, against PCA (metrics/anomaly)."""
    train, test = arrays('train'), arrays('test')
    x = test['image']
    scores = methods.map_chunks(
        lambda chunk, i: neg_elbo(state.params, chunk, jax.random.fold_in(key, i)), x, 500)
    metrics = anomaly.report({'neg_elbo': scores}, test['label'], held_out,
                             train['image'].reshape(len(train['image']), -1),
                             x.reshape(len(x), -1), latent_dim)
    return metrics, {}

  return methods.Method(
      init=init, train_step=train_step,
      eval_step=functools.partial(evaluate, num_samples=eval_k),
      test_step=functools.partial(evaluate, num_samples=test_k),
      sample=sample, visualize=visualize, analyze=analyze if held_out else None)
