"""Generative adversarial networks: Goodfellow et al. 2014, DCGAN and the common losses.

Both players, their optimizer states and the EMA of the generator live in one `GANState`;
one call of `train_step` is one generator update preceded by `loss.n_critic` discriminator
updates (unrolled inside the jitted step), so the spine's trainer, checkpoints and
data-parallel step run it unchanged. `config.batch_size` counts the real examples one step
consumes: each critic update sees its own batch_size / n_critic of them (Gulrajani et al.
2017, Algorithm 1, draws a fresh real batch per critic iteration).

With logits l = D(x), the losses per example (minimised by the player named):
  minimax         D: -log s(l_r) - log(1 - s(l_f))  G: log(1 - s(l_f))     Goodfellow 2014, Eq. 1
  non_saturating  D: as minimax                      G: -log s(l_f)         Goodfellow 2014, Sec. 3
  lsgan           D: (l_r - 1)^2/2 + l_f^2/2         G: (l_f - 1)^2/2       Mao et al. 2017, Eq. 2
  wgan_gp         D: l_f - l_r + lambda (|grad D(x_hat)| - 1)^2   G: -l_f   Gulrajani 2017, Eq. 3
  hinge           D: max(0, 1 - l_r) + max(0, 1 + l_f)           G: -l_f   Miyato 2018, Eq. 16-17
(s is the logistic sigmoid, l_r on real data, l_f on generated data.) Any of them but wgan_gp
can add R1 to D's loss, `loss.r1_gamma` > 0: (gamma / 2) |grad_x D(x_r)|^2 on the real images
D sees (Mescheder et al. 2018, Eq. 9), every step.

Metrics, means over the step: loss (= d_loss, shown in the progress line), d_loss, g_loss,
d_real and d_fake (mean logits), wasserstein (d_real - d_fake, the critic's estimate of the
W1 distance under wgan_gp), gradient_penalty (WGAN-GP's, or R1's |grad|^2), d_grad_norm,
g_grad_norm, ema_decay, r_t (E[sign D(x_real)] on the training batch: ADA's overfitting
heuristic); with ADA also augment_p.

GANs on little data (`augment.kind`, genlab/augment.py): 'diffaugment' (Zhao et al. 2020) or
'ada' (Karras et al. 2020) transforms every image the discriminator sees, real and generated,
in both players' losses, differentiably, so the generator is not taught the augmentations.
ADA's p lives in the train state and follows the r_t heuristic (target `augment.target`,
adjusted every `augment.interval` steps at a speed of `augment.kimg` thousand images per unit
of p; `augment.adaptive=False` keeps p fixed at `augment.p`).
"""
from __future__ import annotations

import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genlab import augment
from genlab import data as data_lib
from genlab import methods
from genlab import optim
from genlab.config_checks import Range, count, fraction, non_negative, positive
from genlab import viz
from genlab.errors import UserError, int_at_least, one_of
from genlab.models import gan as gan_models
from genlab.models import layers

# Ranges of the augment keys, shared with genlab/methods/stylegan2.py.
AUGMENT_RANGES = {
    'augment.p': Range(low=0, high=1, why='the probability of each ADA op'),
    'augment.target': Range(low=-1, high=1, low_open=True, high_open=True,
                            why="ADA's r_t target, 0.6 in the paper"),
    'augment.interval': count(), 'augment.kimg': positive(),
}
# Ranges of this method's config keys (genlab/config_checks.py).
CONFIG_RANGES = {
    'ema_decay': fraction('0 turns the EMA off'),
    'model.latent_dim': count(), 'model.features': count(), 'model.*_hidden_dims': count(),
    'model.maxout_pieces': count(), 'model.d_*dropout': fraction(),
    'model.*_init_range': positive(),
    'loss.n_critic': count(), 'loss.gp_weight': non_negative(),
    'loss.r1_gamma': non_negative('0 turns R1 off'),
    'viz.num_samples': count(), 'viz.interpolation_rows': count(),
    'viz.interpolation_steps': Range(low=2, integer=True, why='the two ends and what lies between'),
    **AUGMENT_RANGES,
}
AUGMENTS = ('none', 'diffaugment', 'ada')

LOSSES = ('minimax', 'non_saturating', 'lsgan', 'wgan_gp', 'hinge')
PRIORS = ('normal', 'uniform')


@flax.struct.dataclass
class GANState:
  step: jax.Array
  g_params: Any
  d_params: Any
  g_stats: Any       # 'batch_stats' collections (BatchNorm, spectral-norm power iterates)
  d_stats: Any
  g_opt_state: Any
  d_opt_state: Any
  ema_params: Any    # EMA of g_params: what eval, samples and pictures use


@flax.struct.dataclass
class ADAGANState(GANState):
  """augment.kind='ada': ADA's p in the train state, so a run resumes it exactly (the state
  of a run without ADA stays a GANState, and its checkpoints what they always were)."""
  ada: Any           # {'p', 'signs' (sum of r_t since p last moved), 'count' (steps in it)}


# -- losses ------------------------------------------------------------------------------------
def discriminator_loss(kind: str, real_B, fake_B):
  """Per-example discriminator (critic) loss from logits, without the gradient penalty."""
  if kind in ('minimax', 'non_saturating'):
    return jax.nn.softplus(-real_B) + jax.nn.softplus(fake_B)
  if kind == 'lsgan':
    return 0.5 * jnp.square(real_B - 1.0) + 0.5 * jnp.square(fake_B)
  if kind == 'wgan_gp':
    return fake_B - real_B
  if kind == 'hinge':
    return jax.nn.relu(1.0 - real_B) + jax.nn.relu(1.0 + fake_B)
  raise ValueError(kind)


def generator_loss(kind: str, fake_B):
  """Per-example generator loss from the logits of its samples."""
  if kind == 'minimax':
    return -jax.nn.softplus(fake_B)  # log(1 - s(l)) = -softplus(l)
  if kind == 'non_saturating':
    return jax.nn.softplus(-fake_B)  # -log s(l) = softplus(-l)
  if kind == 'lsgan':
    return 0.5 * jnp.square(fake_B - 1.0)
  if kind in ('wgan_gp', 'hinge'):
    return -fake_B
  raise ValueError(kind)


def gradient_penalty(critic_fn, real, fake, key):
  """(||grad_x D(x_hat)||_2 - 1)^2 at x_hat = e x + (1 - e) x~, e ~ U[0, 1] per example
  (Gulrajani et al. 2017, Eq. 3) -> (B,)."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
  norm_B = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1) + 1e-12)
  return jnp.square(norm_B - 1.0)


def r1_penalty(logits_fn, real_BxHxWxC):
  """|grad_x D(x)|^2 per real image (Mescheder et al. 2018, Eq. 9, without gamma / 2);
  shared with genlab/methods/stylegan2.py."""
  grads = jax.grad(lambda x: jnp.sum(logits_fn(x)))(real_BxHxWxC)
  return jnp.sum(jnp.square(grads), axis=(1, 2, 3))


def ema_decay(decay: float, step):
  """min(decay, (1 + t) / (10 + t)): the EMA forgets its random start quickly (as TF's
  ExponentialMovingAverage with num_updates does)."""
  t = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + t) / (10.0 + t))


def slerp(a_NxZ, b_NxZ, t_T):
  """Spherical interpolation, for Gaussian latents (White 2016, "Sampling Generative
  Networks", Sec. 2.2) -> (N, T, Z)."""
  a, b = a_NxZ[:, None], b_NxZ[:, None]
  t = t_T[None, :, None]
  cos = jnp.sum(a * b, -1, keepdims=True) / (
      jnp.linalg.norm(a, axis=-1, keepdims=True) * jnp.linalg.norm(b, axis=-1, keepdims=True))
  omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
  so = jnp.sin(omega)
  lerp = a * (1.0 - t) + b * t
  out = (jnp.sin((1.0 - t) * omega) * a + jnp.sin(t * omega) * b) / jnp.where(so < 1e-6, 1., so)
  return jnp.where(so < 1e-6, lerp, out)


# -- what the discriminator sees (shared with genlab/methods/stylegan2.py) ---------------------
def augment_settings(config) -> dict:
  """config.augment, checked: kind, DiffAugment's policy, ADA's ops and p's dynamics."""
  aug = methods.section(config, 'augment')
  kind = one_of(aug.get('kind', 'none'), AUGMENTS, 'augment.kind')
  policy = tuple(aug.get('policy', augment.DIFFAUGMENT_POLICIES))
  ops = tuple(aug.get('ops', ()))
  for name, given, valid in (('augment.policy', policy, augment.DIFFAUGMENT_POLICIES),
                             ('augment.ops', ops, augment.ADA_OPS)):
    unknown = [o for o in given if o not in valid]
    if unknown:
      raise UserError(f'config.{name} has {", ".join(map(repr, unknown))}: choose from '
                      f'{", ".join(valid)}.')
  if kind == 'ada' and not ops:
    raise UserError("config.augment.kind='ada' with no augment.ops: name the ops that are safe "
                    "for the data (e.g. no 'xflip' or 'rotate90' for digits).")
  return dict(kind=kind, policy=policy, ops=ops, p=float(aug.get('p', 0.0)),
              adaptive=bool(aug.get('adaptive', True)), target=float(aug.get('target', 0.6)),
              interval=int(aug.get('interval', 4)), kimg=float(aug.get('kimg', 500.0)))


def initial_ada(a: dict) -> dict:
  """ADA's part of a train state: p, the sum of r_t since p last moved, and its step count."""
  return dict(p=jnp.asarray(a['p'], jnp.float32), signs=jnp.zeros((), jnp.float32),
              count=jnp.zeros((), jnp.int32))


def discriminator_view(a: dict, x, key, p, unit_range: bool = False):
  """What the discriminator sees of x: x, or its DiffAugment / ADA transform (computed in
  [-1, 1], as the references do; `unit_range` for images in [0, 1])."""
  if a['kind'] == 'none':
    return x
  x = x * 2.0 - 1.0 if unit_range else x
  x = (augment.diffaugment(x, key, a['policy']) if a['kind'] == 'diffaugment' else
       augment.ada(x, key, p, a['ops']))
  return (x + 1.0) * 0.5 if unit_range else x


def next_ada(a: dict, ada_state: dict, r_t, batch_size: int) -> dict:
  """Accumulates r_t; every augment.interval steps moves p (augment.ada_update)."""
  signs, count = ada_state['signs'] + r_t, ada_state['count'] + 1
  due = count >= a['interval']
  p = ada_state['p']
  if a['adaptive']:
    moved = augment.ada_update(p, signs / count.astype(jnp.float32), a['target'],
                               batch_size * a['interval'], a['kimg'])
    p = jnp.where(due, moved, p)
  return dict(p=p, signs=jnp.where(due, 0.0, signs),
              count=jnp.where(due, 0, count).astype(jnp.int32))


# -- construction ------------------------------------------------------------------------------


def _settings(config, data_info):
  model, loss = methods.section(config, 'model'), methods.section(config, 'loss')
  kind = one_of(loss.get('kind', 'non_saturating'), LOSSES, 'loss.kind')
  n_critic = int_at_least(loss.get('n_critic', 1), 1, 'loss.n_critic')  # WGAN-GP uses 5
  if config.batch_size % n_critic:
    raise UserError(f'config.batch_size={config.batch_size} is not divisible by '
                    f'loss.n_critic={n_critic}: each critic update takes batch_size / n_critic '
                    'real examples; make batch_size a multiple of it.')
  num_classes = methods.conditional_classes(config, data_info)
  d_norm = one_of(model.get('d_norm', 'batch'), gan_models.D_NORMS, 'model.d_norm')
  if kind == 'wgan_gp' and d_norm == 'batch' and model.get('kind', 'dcgan') == 'dcgan':
    raise UserError("loss.kind='wgan_gp' penalises per-example gradients, which batch norm in "
                    "the critic invalidates (Gulrajani et al. 2017, Sec. 4): set "
                    "--config.model.d_norm=layer (or none).")
  r1_gamma = float(loss.get('r1_gamma', 0.0))
  if r1_gamma > 0 and kind == 'wgan_gp':
    raise UserError("loss.r1_gamma > 0 with loss.kind='wgan_gp': the critic already has its "
                    'gradient penalty (gp_weight); set --config.loss.r1_gamma=0.')
  decay = float(config.get('ema_decay', 0.999))
  if not 0.0 <= decay < 1.0:
    raise UserError(f'config.ema_decay={decay}: give a decay in [0, 1) (0 turns the EMA off).')
  return dict(
      augment=augment_settings(config), kind=kind, n_critic=int(n_critic), r1_gamma=r1_gamma,
      # The weight of D's gradient penalty: WGAN-GP's lambda, or R1's gamma / 2.
      penalty_weight=float(loss.get('gp_weight', 10.0)) if kind == 'wgan_gp' else r1_gamma / 2,
      num_classes=num_classes,
      latent_dim=int(model.get('latent_dim', 100)),
      prior=one_of(model.get('prior', 'normal'), PRIORS, 'model.prior'),
      ema_decay=decay, d_norm=d_norm)


def _output_bias(config, kind):
  """model.g_output_bias 'marginals': logit of the mean training image, clipped to
  [1e-3, 1 - 1e-3] (pylearn2's init_bias_from_marginals, used by Goodfellow et al.'s MNIST
  generator): the generator starts at the average digit with a black background, instead of
  grey noise that a maxout discriminator rejects at once. 'zeros' is flax's default."""
  choice = one_of(methods.section(config, 'model').get('g_output_bias', 'zeros'),
                  ('zeros', 'marginals'), 'model.g_output_bias')
  if choice == 'zeros' or kind != 'mlp':
    return None
  p = np.clip(data_lib.train_pixel_mean(config).reshape(-1), 1e-3, 1 - 1e-3)
  return tuple(float(v) for v in np.log(p / (1 - p)))


def build_networks(config, data_info, num_classes):
  model = methods.section(config, 'model')
  return gan_models.make_networks(
      model.get('kind', 'dcgan'), tuple(int(d) for d in data_info.image_shape),
      num_classes=num_classes,
      g_hidden_dims=tuple(model.get('g_hidden_dims', (1200, 1200))),
      d_hidden_dims=tuple(model.get('d_hidden_dims', (240, 240))),
      maxout_pieces=int(model.get('maxout_pieces', 5)),
      g_output_bias=_output_bias(config, model.get('kind', 'dcgan')),
      init_ranges=(model.get('g_init_range', None), model.get('d_init_range', None)),
      d_dropout=(float(model.get('d_input_dropout', 0.2)),
                 float(model.get('d_hidden_dropout', 0.5))),
      features=int(model.get('features', 64)),
      d_norm=model.get('d_norm', 'batch'),
      spectral_norm=bool(model.get('spectral_norm', False)),
      conv_impl=layers.backend_impl(model.get('conv_impl', 'auto'), gan_models.CONV_IMPLS,
                                    'fast', 'model.conv_impl'),
      d_conv_impl=layers.backend_impl(model.get('d_conv_impl', 'auto'), gan_models.D_CONV_IMPLS,
                                      'matmul', 'model.d_conv_impl'),
      dtype=jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'),
                              'model.dtype')))


def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  s = _settings(config, data_info)
  aug = s['augment']
  kind, n_critic, num_classes, latent_dim = s['kind'], s['n_critic'], s['num_classes'], \
      s['latent_dim']
  image_shape = tuple(int(d) for d in data_info.image_shape)
  generator, discriminator, out_range = build_networks(config, data_info, num_classes)
  g_tx, g_schedule = optim.make_optimizer(config, 'g_optimizer')
  d_tx, _ = optim.make_optimizer(config, 'd_optimizer')
  vz = methods.section(config, 'viz')
  num_viz = int(vz.get('num_samples', 64))
  interp_rows, interp_steps = int(vz.get('interpolation_rows', 8)), \
      int(vz.get('interpolation_steps', 10))

  def to_model(images):  # the data pipeline gives [0, 1]
    return images if out_range == 'sigmoid' else images * 2.0 - 1.0

  def to_unit(images):
    return images if out_range == 'sigmoid' else (images + 1.0) * 0.5

  def prior(key, n):
    if s['prior'] == 'uniform':
      return jax.random.uniform(key, (n, latent_dim), jnp.float32, -1.0, 1.0)
    return jax.random.normal(key, (n, latent_dim), jnp.float32)

  def generate(params, stats, z, labels):
    """G(z) with batch statistics of this batch (BatchNorm as DCGAN's reference code)."""
    out, new = generator.apply({'params': params, 'batch_stats': stats}, z, labels, train=True,
                               mutable=['batch_stats'])
    return out, new.get('batch_stats', stats)

  def critic(params, stats, x, labels, key, train=True):
    out, new = discriminator.apply({'params': params, 'batch_stats': stats}, x, labels,
                                   train=train, rngs={'dropout': key}, mutable=['batch_stats'])
    return out, new.get('batch_stats', stats)

  def init(key):
    g_key, d_key = jax.random.split(key)
    z = jnp.zeros((2, latent_dim), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32) if num_classes else None
    g_vars = generator.init(g_key, z, labels, train=True)
    d_vars = discriminator.init({'params': d_key, 'dropout': d_key},
                                jnp.zeros((2, *image_shape), jnp.float32), labels, train=True)
    g_params, d_params = g_vars['params'], d_vars['params']
    state = GANState(
        step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
        g_stats=g_vars.get('batch_stats', {}), d_stats=d_vars.get('batch_stats', {}),
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params))
    if aug['kind'] != 'ada':
      return state
    return ADAGANState(**vars(state), ada=initial_ada(aug))

  def seen(x, key, p):
    return discriminator_view(aug, x, key, p, unit_range=out_range == 'sigmoid')

  def critic_update(g_params, g_stats, p, carry, inputs):
    """One discriminator step on one real batch (one of the n_critic)."""
    d_params, d_stats, d_opt_state = carry
    x_real, labels, key = inputs
    z_key, gp_key, drop_key = jax.random.split(key, 3)
    fake, _ = generate(g_params, g_stats, prior(z_key, x_real.shape[0]), labels)
    fake = seen(jax.lax.stop_gradient(fake), jax.random.fold_in(key, 11), p)
    x_real = seen(x_real, jax.random.fold_in(key, 12), p)

    def loss_fn(d_params):
      real_B, stats = critic(d_params, d_stats, x_real, labels, drop_key)
      fake_B, stats = critic(d_params, stats, fake, labels, jax.random.fold_in(drop_key, 1))
      loss_B = discriminator_loss(kind, real_B, fake_B)
      gp_B = jnp.zeros_like(loss_B)
      if kind == 'wgan_gp':
        gp_B = gradient_penalty(
            lambda x: critic(d_params, d_stats, x, labels, jax.random.fold_in(drop_key, 2))[0],
            x_real, fake, gp_key)
      elif s['r1_gamma'] > 0:
        gp_B = r1_penalty(
            lambda x: critic(d_params, d_stats, x, labels, jax.random.fold_in(drop_key, 2))[0],
            x_real)
      loss = jnp.mean(loss_B + s['penalty_weight'] * gp_B)
      return loss, (stats, {'d_loss': loss, 'd_real': jnp.mean(real_B),
                            'd_fake': jnp.mean(fake_B), 'gradient_penalty': jnp.mean(gp_B),
                            'r_t': jnp.mean(jnp.sign(real_B))})

    (_, (d_stats, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = d_tx.update(grads, d_opt_state, d_params)
    metrics['d_grad_norm'] = optax.global_norm(grads)
    return (optax.apply_updates(d_params, updates), d_stats, d_opt_state), metrics

  def train_step(state, batch, key):
    x, labels = to_model(batch['image']), batch['label']
    b = x.shape[0] // n_critic
    # Row i*n_critic + j goes to critic step j, so each device's rows split evenly.
    x_NxBx = jnp.swapaxes(x.reshape(b, n_critic, *x.shape[1:]), 0, 1)
    labels_NxB = labels.reshape(b, n_critic).T
    keys = jax.random.split(jax.random.fold_in(key, 0), n_critic)
    # Unrolled, not lax.scan: convolutions inside an XLA while loop ran 14x slower on the CPU
    # (DCGAN step 1016 ms -> 70 ms at batch 64); n_critic is small.
    ada = getattr(state, 'ada', None)
    p = ada['p'] if ada is not None else jnp.float32(aug['p'])
    carry, history = (state.d_params, state.d_stats, state.d_opt_state), []
    for i in range(n_critic):
      carry, metrics = critic_update(state.g_params, state.g_stats, p, carry,
                                     (x_NxBx[i], labels_NxB[i], keys[i]))
      history.append(metrics)
    d_params, d_stats, d_opt_state = carry
    d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *history)

    z_key, drop_key = jax.random.split(jax.random.fold_in(key, 1))
    z, g_labels = prior(z_key, b), labels_NxB[-1]

    def g_loss_fn(g_params):
      fake, g_stats = generate(g_params, state.g_stats, z, g_labels)
      fake_B, _ = critic(d_params, d_stats, seen(fake, jax.random.fold_in(drop_key, 13), p),
                         g_labels, drop_key)
      return jnp.mean(generator_loss(kind, fake_B)), g_stats

    (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    decay = ema_decay(s['ema_decay'], state.step)
    ema_params = optax.incremental_update(g_params, state.ema_params, 1.0 - decay)
    new_state = state.replace(step=state.step + 1, g_params=g_params, d_params=d_params,
                              g_stats=g_stats, d_stats=d_stats, g_opt_state=g_opt_state,
                              d_opt_state=d_opt_state, ema_params=ema_params)
    if ada is not None:
      new_state = new_state.replace(ada=next_ada(aug, ada, d_metrics['r_t'], config.batch_size))
      d_metrics['augment_p'] = p
    metrics = dict(d_metrics, loss=d_metrics['d_loss'], g_loss=g_loss,
                   wasserstein=d_metrics['d_real'] - d_metrics['d_fake'],
                   g_grad_norm=optax.global_norm(g_grads), ema_decay=decay,
                   learning_rate=jnp.asarray(g_schedule(state.step), jnp.float32))
    return new_state, metrics

  def sample_model_range(state, key, n, labels=None):
    labels = methods.sample_labels(n, num_classes) if labels is None and num_classes else labels
    return generate(state.ema_params, state.g_stats, prior(key, n), labels)[0]

  def sample(state, key, n):
    return to_unit(sample_model_range(state, key, n)).astype(jnp.float32)

  def eval_step(state, batch, key):
    """Sums over real rows: the discriminator (eval mode) on held-out real digits and on as
    many EMA samples. A d_accuracy far above the training one means D overfits."""
    mask_B = batch['mask']
    n = mask_B.shape[0]
    labels = batch['label'] if num_classes else None
    fake = sample_model_range(state, key, n, labels)
    real_B, _ = critic(state.d_params, state.d_stats, to_model(batch['image']), labels, key,
                       train=False)
    fake_B, _ = critic(state.d_params, state.d_stats, fake, labels, key, train=False)
    per_example = {'d_loss': discriminator_loss(kind, real_B, fake_B),
                   'g_loss': generator_loss(kind, fake_B),
                   'd_real': real_B, 'd_fake': fake_B,
                   'd_accuracy': 0.5 * ((real_B > 0).astype(jnp.float32) +
                                        (fake_B < 0).astype(jnp.float32))}
    return {k: jnp.sum(jnp.where(mask_B > 0, v, 0.0)) for k, v in per_example.items()}

  @jax.jit
  def decode(state, z, labels):
    return to_unit(generate(state.ema_params, state.g_stats, z, labels)[0])

  def visualize(state, key, batch):
    """A fixed noise batch (the same at every eval), class rows, latent interpolations."""
    del batch
    grids = {}
    z_key, interp_key = jax.random.split(key)
    z = prior(z_key, num_viz)
    ncols = math.ceil(math.sqrt(num_viz))
    labels = methods.sample_labels(num_viz, num_classes)
    grids['samples'] = viz.image_grid(np.asarray(decode(state, z, labels)), ncols)
    if num_classes:  # row = class, column = one noise vector shared by every class
      cols = 10
      z_c = jnp.tile(prior(z_key, cols), (num_classes, 1))
      labels = jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), cols)
      grids['samples_by_class'] = viz.image_grid(np.asarray(decode(state, z_c, labels)), cols)
    ends = prior(interp_key, 2 * interp_rows)
    t_T = jnp.linspace(0.0, 1.0, interp_steps)
    if s['prior'] == 'normal':
      z_RxTxZ = slerp(ends[:interp_rows], ends[interp_rows:], t_T)
    else:
      z_RxTxZ = (ends[:interp_rows, None] * (1 - t_T[None, :, None]) +
                 ends[interp_rows:, None] * t_T[None, :, None])
    labels = (jnp.repeat(jnp.arange(interp_rows, dtype=jnp.int32) % num_classes, interp_steps)
              if num_classes else None)
    frames = np.asarray(decode(state, z_RxTxZ.reshape(-1, latent_dim), labels))
    grids['interpolation'] = viz.interpolation_strip(
        frames.reshape(interp_rows, interp_steps, *image_shape))
    return grids

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
                        visualize=visualize)
