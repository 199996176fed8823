"""Autoencoders: bottleneck, denoising and sparse; anomaly detection by reconstruction error.

The objective, per example (summed over pixels and units), averaged over the batch:
  reconstruction 'cross_entropy'  -sum_i [x_i log xh_i + (1 - x_i) log(1 - xh_i)]
                                  (Vincent et al. 2008, Sec. 2.2, L_IH)
                 'mse'            1/2 sum_i (xh_i - x_i)^2        (Ng 2011, "Sparse autoencoder", J)
  where xh = sigmoid(decoder(encoder(x~))) and x~ = x, or for a denoising autoencoder
  x~ ~ q_D(x~ | x), drawn afresh every step, the loss still against the clean x
  (Vincent et al. 2008, Sec. 2.3). Corruptions (config.noise.kind, level):
    'gaussian'         x~ = clip(x + level * eps, 0, 1), eps ~ N(0, I)
    'masking'          each pixel set to 0 with probability level  (Vincent's "MN")
    'salt_and_pepper'  each pixel set to 0 or 1 (even odds) with probability level ("SP")
  plus a sparsity penalty on the code h (config.loss.sparsity):
    'l1'  lambda * sum_j |h_j|       (Goodfellow, Bengio & Courville 2016, Sec. 14.2.1)
    'kl'  beta * sum_j KL(rho || rhohat_j), rhohat_j = the batch mean of h_j in (0, 1),
          KL(rho || r) = rho log(rho / r) + (1 - rho) log((1 - rho) / (1 - r))
          (Ng 2011, "Autoencoders and sparsity"; needs model.code_activation='sigmoid')
  and, as in Ng's J(W, b), an optional weight decay (config.loss.weight_decay) lambda/2 * the
  summed squares of every kernel (not the biases).

eval_step sums per-example test numbers (recon, mse per pixel, psnr, and for noise the noisy
input's); `analyze` does what needs whole splits: reconstruction error and kNN accuracy of the
codes against PCA and raw pixels, PSNR/SSIM against classical denoisers tuned on validation,
the activation statistics of a sparse code, the anomaly AUROC, and their pictures.
"""
from __future__ import annotations

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
from genlab.config_checks import Range, count, non_negative
from genlab import viz
from genlab.errors import UserError, int_at_least, one_of
from genlab.metrics import anomaly
from genlab.metrics import classical
from genlab.models import autoencoder as ae_models
from genlab.models import vae as vae_models

RECONSTRUCTION = ('cross_entropy', 'mse')
SPARSITY = ('none', 'l1', 'kl')
NOISE = ('none', 'gaussian', 'masking', 'salt_and_pepper')

# Ranges of this method's config keys (genlab/config_checks.py).
CONFIG_RANGES = {
    'model.latent_dim': count(), 'model.hidden_dims': count(), 'model.conv_features': count(),
    'loss.sparsity_weight': non_negative(), 'loss.weight_decay': non_negative(),
    'loss.sparsity_target': Range(low=0, high=1, low_open=True, high_open=True,
                                  why='a mean activation of sigmoid units'),
    'noise.level': non_negative(), 'eval.knn_k': count(), 'eval.silent_threshold': non_negative(),
}


# -- the objective ---------------------------------------------------------------------------
def corrupt(key, x, kind: str, level: float) -> jax.Array:
  """x~ ~ q_D(x~ | x) for config.noise (see the module docstring); 'none' returns x."""
  if kind == 'none' or level == 0:
    return x
  if kind == 'gaussian':
    return jnp.clip(x + level * jax.random.normal(key, x.shape, x.dtype), 0.0, 1.0)
  hit_key, salt_key = jax.random.split(key)
  hit = jax.random.uniform(hit_key, x.shape) < level
  if kind == 'masking':
    return jnp.where(hit, 0.0, x)
  salt = jax.random.bernoulli(salt_key, 0.5, x.shape).astype(x.dtype)
  return jnp.where(hit, salt, x)


def reconstruction_loss(kind: str, logits, x) -> jax.Array:
  """Per-example reconstruction loss (B,), summed over pixels."""
  axes = tuple(range(1, x.ndim))
  if kind == 'cross_entropy':
    return jnp.sum(optax.sigmoid_binary_cross_entropy(logits, x), axis=axes)
  return 0.5 * jnp.sum((jax.nn.sigmoid(logits) - x) ** 2, axis=axes)


def kl_sparsity(code_BxZ, target: float) -> jax.Array:
  """sum_j KL(rho || rhohat_j) over the units, rhohat_j the batch mean (Ng 2011)."""
  rho_hat = jnp.clip(jnp.mean(code_BxZ, axis=0), 1e-6, 1 - 1e-6)
  return jnp.sum(target * jnp.log(target / rho_hat)
                 + (1 - target) * jnp.log((1 - target) / (1 - rho_hat)))


def sparsity_penalty(kind: str, code_BxZ, weight: float, target: float) -> jax.Array:
  """The batch's penalty (a scalar, already weighted)."""
  if kind == 'l1':
    return weight * jnp.mean(jnp.sum(jnp.abs(code_BxZ), axis=1))
  if kind == 'kl':
    return weight * kl_sparsity(code_BxZ, target)
  return jnp.zeros((), jnp.float32)


def weight_decay(params, weight: float) -> jax.Array:
  """lambda/2 * sum of squared kernel weights, biases excluded (Ng 2011, J(W, b))."""
  kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
             if getattr(path[-1], 'key', None) == 'kernel']
  return 0.5 * weight * sum(jnp.sum(k ** 2) for k in kernels)


def psnr(x_hat, x) -> jax.Array:
  """Per-image PSNR in dB of [0, 1] images, 10 log10(1 / MSE), MSE floored at 1e-10."""
  mse = jnp.mean((x_hat - x) ** 2, axis=tuple(range(1, x.ndim)))
  return -10.0 * jnp.log10(jnp.maximum(mse, 1e-10))


# -- settings --------------------------------------------------------------------------------
def _settings(config, data_info) -> ml_collections.ConfigDict:
  """The method's config keys, checked: every bad value stops here with one clear line."""
  model, loss = methods.section(config, 'model'), methods.section(config, 'loss')
  noise, ev = methods.section(config, 'noise'), methods.section(config, 'eval')
  s = ml_collections.ConfigDict()
  s.image_shape = tuple(int(d) for d in data_info.image_shape)
  s.input_dim = math.prod(s.image_shape)
  s.kind = one_of(model.get('kind', 'mlp'), ('mlp', 'conv'), 'model.kind')
  s.latent_dim = int_at_least(model.get('latent_dim', 32), 1, 'model.latent_dim')
  s.code_activation = one_of(model.get('code_activation', 'linear'),
                             tuple(vae_models.CODE_ACTIVATIONS), 'model.code_activation')
  s.activation = one_of(model.get('activation', 'relu'), tuple(ae_models.ACTIVATIONS),
                        'model.activation')
  s.reconstruction = one_of(loss.get('reconstruction', 'cross_entropy'), RECONSTRUCTION,
                            'loss.reconstruction')
  s.sparsity = one_of(loss.get('sparsity', 'none'), SPARSITY, 'loss.sparsity')
  s.sparsity_weight = float(loss.get('sparsity_weight', 0.0))
  s.sparsity_target = float(loss.get('sparsity_target', 0.05))
  s.weight_decay = float(loss.get('weight_decay', 0.0))
  s.noise = one_of(noise.get('kind', 'none'), NOISE, 'noise.kind')
  s.noise_level = float(noise.get('level', 0.0))
  s.knn_k = int_at_least(ev.get('knn_k', 5), 1, 'eval.knn_k')
  s.silent_threshold = float(ev.get('silent_threshold', 0.01))
  s.denoisers = tuple(ev.get('denoisers', tuple(classical.DENOISERS)))
  s.held_out = data_lib.held_out_labels(config)

  if s.sparsity != 'none':
    if s.sparsity_weight < 0:
      raise UserError(f'config.loss.sparsity_weight={s.sparsity_weight}: give a weight >= 0.')
    if not 0.0 < s.sparsity_target < 1.0:
      raise UserError(f'config.loss.sparsity_target={s.sparsity_target}: the target mean '
                      'activation rho must lie strictly between 0 and 1, e.g. 0.05.')
  if s.sparsity == 'kl' and s.code_activation != 'sigmoid':
    raise UserError(f"config.loss.sparsity='kl' needs activations in (0, 1): set "
                    f"--config.model.code_activation=sigmoid (it is {s.code_activation!r}).")
  if s.weight_decay < 0:
    raise UserError(f'config.loss.weight_decay={s.weight_decay}: give a weight >= 0.')
  if s.noise_level < 0:
    raise UserError(f'config.noise.level={s.noise_level}: a noise level must be >= 0.')
  if s.noise in ('masking', 'salt_and_pepper') and s.noise_level > 1:
    raise UserError(f'config.noise.level={s.noise_level}: {s.noise} noise corrupts that '
                    'fraction of the pixels, so it must lie in [0, 1].')
  unknown = sorted(set(s.denoisers) - set(classical.DENOISERS))
  if unknown:
    raise UserError(f'config.eval.denoisers: {unknown[0]!r} is not known: use some of '
                    f'{list(classical.DENOISERS)}.')
  if s.latent_dim > s.input_dim and s.sparsity == 'none' and s.noise == 'none':
    raise UserError(
        f'config.model.latent_dim={s.latent_dim} is larger than the input '
        f'({"x".join(map(str, s.image_shape))} = {s.input_dim} values): such a code can copy '
        'the input. Use a bottleneck smaller than the input, or add a sparsity penalty or '
        'noise, which make an overcomplete code learn something.')
  return s


def build_model(config, s) -> ae_models.Autoencoder:
  model = methods.section(config, 'model')
  return ae_models.make_autoencoder(
      s.image_shape, kind=s.kind, latent_dim=s.latent_dim,
      hidden_dims=tuple(model.get('hidden_dims', (512, 256))),
      conv_features=tuple(model.get('conv_features', (32, 64))),
      code_activation=s.code_activation, activation=s.activation,
      dtype=jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'),
                              'model.dtype')))


def feature_images(params, image_shape) -> np.ndarray | None:
  """The first encoder layer's weights as images (Z, H, W, C), each scaled to [0, 1] by its
  largest absolute weight (0.5 = zero); None for a convolutional encoder."""
  enc = params['encoder']
  kernel = enc['Dense_0']['kernel'] if 'Dense_0' in enc else enc.get('code', {}).get('kernel')
  if kernel is None or kernel.shape[0] != math.prod(image_shape):
    return None
  w = np.asarray(kernel, np.float32).T
  w = w / np.maximum(np.abs(w).max(axis=1, keepdims=True), 1e-12)
  return (0.5 + 0.5 * w).reshape(-1, *image_shape)


# -- the method ------------------------------------------------------------------------------
def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  s = _settings(config, data_info)
  model = build_model(config, s)
  tx, schedule = optim.make_optimizer(config)
  noisy = s.noise != 'none'

  def forward(params, x_in):
    code = model.apply({'params': params}, x_in, method=model.encode)
    return code, model.apply({'params': params}, code, method=model.decode)

  def init(key):
    params = model.init(key, jnp.zeros((1, *s.image_shape), jnp.float32))['params']
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

  def train_step(state, batch, key):
    x = batch['image']
    x_in = corrupt(key, x, s.noise, s.noise_level)

    def loss_fn(params):
      code, logits = forward(params, x_in)
      recon = jnp.mean(reconstruction_loss(s.reconstruction, logits, x))
      penalty = sparsity_penalty(s.sparsity, code, s.sparsity_weight, s.sparsity_target)
      decay = weight_decay(params, s.weight_decay) if s.weight_decay else 0.0
      return recon + penalty + decay, (recon, penalty, jnp.mean(code))

    (loss, (recon, penalty, mean_code)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    metrics = {'loss': loss, 'recon': recon, 'mean_activation': mean_code,
               'grad_norm': optax.global_norm(grads),
               'learning_rate': jnp.asarray(schedule(state.step), jnp.float32)}
    if s.sparsity != 'none':
      metrics['sparsity_penalty'] = penalty
    return state.apply_gradients(grads=grads), metrics

  def eval_step(state, batch, key):
    x = batch['image']
    mask = batch.get('mask', jnp.ones(x.shape[:1], jnp.float32))
    x_in = corrupt(key, x, s.noise, s.noise_level)
    code, logits = forward(state.params, x_in)
    x_hat = jax.nn.sigmoid(logits)
    per_example = {'recon': reconstruction_loss(s.reconstruction, logits, x),
                   'mse': jnp.mean((x_hat - x) ** 2, axis=(1, 2, 3)),
                   'psnr': psnr(x_hat, x),
                   'mean_activation': jnp.mean(code, axis=1)}
    if noisy:
      per_example['noisy_psnr'] = psnr(x_in, x)
    return {k: jnp.sum(jnp.where(mask > 0, v, 0.0)) for k, v in per_example.items()}

  def reconstruct(state, batch, key):
    x_in = corrupt(key, batch['image'], s.noise, s.noise_level)
    return {'input': x_in, 'output': jax.nn.sigmoid(forward(state.params, x_in)[1])}

  @jax.jit
  def encode_decode(params, x_in):
    code, logits = forward(params, x_in)
    return code, jax.nn.sigmoid(logits)

  def run_split(params, x_in):  # -> (codes, reconstructions) on the host
    return methods.map_chunks(lambda chunk, _: encode_decode(params, chunk), x_in)

  corrupt_jit = jax.jit(lambda key, x: corrupt(key, x, s.noise, s.noise_level))

  def analyze(state, key, arrays):
    params = state.params
    train, test = arrays('train'), arrays('test')
    x_train, x_test = train['image'], test['image']
    flat_train, flat_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    code_train, _ = run_split(params, x_train)
    code_test, recon_test = run_split(params, x_test)
    sq_err = np.sum((recon_test - x_test).reshape(len(x_test), -1) ** 2, axis=1)
    metrics = {'recon_mse': float(np.mean(sq_err) / s.input_dim)}
    pictures = {}

    if s.latent_dim < s.input_dim:  # dimensionality reduction, against PCA at the same size
      mean, comps = classical.pca_fit(flat_train, s.latent_dim)
      pca_train = classical.pca_encode(flat_train, mean, comps)
      pca_test = classical.pca_encode(flat_test, mean, comps)
      pca_recon = classical.pca_reconstruct(flat_test, mean, comps)
      metrics['baseline/pca/recon_mse'] = float(np.mean((pca_recon - flat_test) ** 2))
      knn = lambda a, b: classical.knn_accuracy(a, train['label'], b, test['label'], s.knn_k)
      metrics['knn/code'] = knn(code_train, code_test)
      metrics['baseline/knn/pca'] = knn(pca_train, pca_test)
      metrics['baseline/knn/pixels'] = knn(flat_train, flat_test)
      if s.latent_dim == 2:
        pictures['codes_2d'] = viz.scatter_codes(
            code_test, test['label'], f'{s.kind.upper()} autoencoder, 2-D codes of the test set')
        pictures['pca_2d'] = viz.scatter_codes(pca_test, test['label'],
                                               'PCA, 2 components, test set')

    if noisy:  # denoising, against classical denoisers tuned on the validation split
      val = arrays('eval')
      noisy_test = np.asarray(corrupt_jit(jax.random.fold_in(key, 0), x_test))
      noisy_val = np.asarray(corrupt_jit(jax.random.fold_in(key, 1), val['image']))
      denoised = run_split(params, noisy_test)[1]
      metrics['denoise/psnr'] = float(np.mean(classical.psnr(x_test, denoised)))
      metrics['denoise/ssim'] = float(np.mean(classical.ssim(x_test, denoised)))
      baselines = classical.classical_denoising(noisy_val, val['image'], noisy_test, x_test,
                                                names=s.denoisers)
      metrics.update({f'baseline/{k}': v for k, v in baselines.items()})
      best = max(s.denoisers, key=lambda n: baselines[f'{n}/psnr'])
      classic = classical.denoise(best, noisy_test[:8], baselines[f'{best}/param'])
      rows = np.stack([noisy_test[:8], denoised[:8], x_test[:8], classic], axis=1)
      pictures['denoising'] = viz.image_grid(rows.reshape(-1, *s.image_shape), ncols=4)

    if s.sparsity != 'none':
      unit_means = code_test.mean(axis=0)
      metrics['sparsity/mean_activation'] = float(unit_means.mean())
      metrics['sparsity/silent_fraction'] = float(np.mean(unit_means < s.silent_threshold))
      if s.sparsity == 'kl':
        metrics['sparsity/target'] = s.sparsity_target
      features = feature_images(params, s.image_shape)
      if features is not None:
        pictures['features'] = viz.image_grid(features, ncols=math.ceil(math.sqrt(len(features))))

    if s.held_out:
      metrics.update(anomaly.report({'recon': sq_err}, test['label'], s.held_out, flat_train,
                                    flat_test, min(s.latent_dim, s.input_dim - 1)))
    return metrics, pictures

  def visualize(state, key, batch):
    x = np.asarray(batch['image'], np.float32)
    if 'mask' in batch:
      x = x[np.asarray(batch['mask']) > 0]
    x = x[:16]
    x_in = np.asarray(corrupt_jit(key, x))
    recon = np.asarray(encode_decode(state.params, x_in)[1])
    columns = [x_in, recon, x] if noisy else [x, recon]
    grids = {'reconstructions': viz.image_grid(
        np.stack(columns, axis=1).reshape(-1, *s.image_shape), ncols=2 * len(columns))}
    features = feature_images(state.params, s.image_shape) if s.sparsity != 'none' else None
    if features is not None:
      grids['features'] = viz.image_grid(features, ncols=math.ceil(math.sqrt(len(features))))
    return grids

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step,
                        visualize=visualize, analyze=analyze, reconstruct=reconstruct)
