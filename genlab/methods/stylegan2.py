"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
trained as NVlabs/stylegan2-ada-pytorch trains it (training/loss.py StyleGAN2Loss,
training/training_loop.py); the networks are genlab/models/stylegan2.py.

One call of `train_step` is one iteration of the reference's loop over its phases, each an
optimiser step of its own on the same batch of reals:
  Gmain  non-saturating logistic loss, softplus(-D(G(z)))                Goodfellow 2014, Sec. 3
  Greg   path-length regularisation, every `loss.pl_interval` steps:
         pl_weight (|J_w^T y|_2 - a)^2, y ~ N(0, I) / sqrt(H W), a the running mean of the
         lengths (decay pl_decay), on batch / pl_batch_shrink           Karras et al. 2020, Eq. 4
  Dmain  softplus(D(G(z))) + softplus(-D(x))
  Dreg   R1, every `loss.r1_interval` steps: (gamma / 2) |grad_x D(x)|^2  Mescheder 2018, Eq. 9
The regularisers are lazy (Karras et al. 2020, Sec. 3.1): their losses are multiplied by their
interval, and each player's Adam runs at lr k/(k+1) and betas^(k/(k+1)) for k its interval
(the reference's mb_ratio, `lazy_regularization`). Which phases a step runs is its static
label (`Method.phase`: 'main', 'main+pl', 'main+r1', 'main+pl+r1'), an argument of
train_step; the trainer compiles each labelled step once. (Not a lax.cond on state.step: XLA's
CPU backend ran the convolutions of a regularisation phase inside a conditional 4-15x slower.)

Style mixing (Karras et al. 2019, Sec. 3.1): with probability style_mixing_prob the ws from
one cutoff layer on come from a second z, one cutoff per batch. The running average of w
(`w_avg`, decay model.w_avg_beta per mapping call) is the centre of truncation,
w' = w_avg + psi (w - w_avg) (Karras et al. 2019, Sec. 3.2). The generator's EMA has a
half-life of `ema_kimg` thousand images, ramped up as ema_rampup x images seen when set
(0.5^(batch / ema_nimg) per step).

Images whose side is not a power of two (MNIST's 28) are padded with black to the next one
(32) for the networks, and samples are cropped back, so every metric sees the data's shape.
What D sees can be augmented as for the other GANs (`augment.kind`: DiffAugment or ADA,
genlab/methods/gan.py); ADA's p is in the train state.

Metrics: loss (= d_loss), g_loss, d_loss, d_real, d_fake, r_t, the last r1_penalty and
pl_penalty (from the latest regularisation step), pl_mean, ema_beta, learning_rate,
augment_p with ADA.
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

from genlab import batch_split
from genlab import methods
from genlab import optim
from genlab import viz
from genlab.config_checks import Range, count, fraction, non_negative, positive
from genlab.errors import UserError, one_of
from genlab.methods import gan
from genlab.models import stylegan2 as stylegan2_models

# config.batch_split='auto' on the CPU: G's synthesis and D's blocks in slices of the rows
# (genlab/models/stylegan2.py, genlab/batch_split.py; D's epilogue joined), the same function.
# stylegan2_mnist's step at batch 32 took 266-327 ms whole, 207 / 181-186 / 208 ms in
# 2 / 4 / 8 slices (the step with R1: 409-430, 335, 280-284, 306).
CPU_SPLITS = 4

CONFIG_RANGES = {
    'model.z_dim': count(), 'model.w_dim': count(), 'model.mapping_layers': count(),
    'model.mapping_lr_multiplier': positive(), 'model.channel_base': count(),
    'model.channel_max': count(), 'model.num_bf16_res': Range(low=0, integer=True),
    'model.mbstd_group_size': count(), 'model.mbstd_num_channels': count(),
    'model.w_avg_beta': fraction(),
    'loss.r1_gamma': non_negative('0 turns R1 off'), 'loss.r1_interval': count(),
    'loss.pl_weight': non_negative('0 turns path-length regularisation off'),
    'loss.pl_interval': count(), 'loss.pl_batch_shrink': count(), 'loss.pl_decay': fraction(),
    'loss.style_mixing_prob': fraction(),
    'ema_kimg': non_negative('0 turns the EMA off'), 'ema_rampup': non_negative('0: no ramp-up'),
    'model.conv_clamp': positive('None: no clamping'),
    # [0, 1] unless sample.extrapolate=True: checked with it in _truncation_psi.
    'sample.truncation_psi': Range(),
    'viz.num_samples': count(), **gan.AUGMENT_RANGES,
}


@flax.struct.dataclass
class StyleGAN2State:
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  ema_params: Any    # the generator's EMA: what eval, samples and pictures use
  w_avg: jax.Array   # (w_dim,) running mean of w: the centre of truncation
  pl_mean: jax.Array  # the running mean path length a of Eq. 4
  reg: Any           # {'r1_penalty', 'pl_penalty'}: from the latest regularisation phases
  ada: Any           # {'p', 'signs', 'count'} (gan.initial_ada); p stays 0 without ADA


# -- the pieces, each checked against the reference in tests/test_methods_stylegan2.py ---------
def lazy_regularization(learning_rate: float, betas: tuple[float, float], interval: int):
  """The optimiser of a player whose regulariser runs every `interval` steps (Karras et al.
  2020, Sec. 3.1 and App. B; stylegan2-ada-pytorch training_loop.py): with c = k / (k + 1),
  learning rate x c and Adam's betas^c, so that k + 1 updates per k minibatches move the
  weights as k plain updates would."""
  ratio = interval / (interval + 1)
  return learning_rate * ratio, tuple(b ** ratio for b in betas)


def ema_beta(step, batch_size: int, ema_kimg: float, ema_rampup: float):
  """0.5^(batch / ema_nimg), ema_nimg = 1000 ema_kimg (capped at ema_rampup x images seen when
  ema_rampup > 0): the reference's G_ema update, the weight of the old average."""
  nimg = jnp.asarray(step, jnp.float32) * batch_size
  ema_nimg = jnp.float32(ema_kimg * 1000.0)
  if ema_rampup > 0:
    ema_nimg = jnp.minimum(ema_nimg, nimg * ema_rampup)
  return jnp.power(0.5, batch_size / jnp.maximum(ema_nimg, 1e-8))


def path_lengths(synthesize, ws_BxNxW, key):
  """|J_w^T y|_2 per sample, y ~ N(0, I) / sqrt(H W) (Karras et al. 2020, Eq. 4): the norm
  over w's dimensions, the mean over the ws layers, as the reference's pl_lengths."""
  img = synthesize(ws_BxNxW)
  y = jax.random.normal(key, img.shape, img.dtype) / math.sqrt(img.shape[1] * img.shape[2])
  grads = jax.grad(lambda ws: jnp.sum(synthesize(ws) * y))(ws_BxNxW)
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(grads), axis=2), axis=1))


def style_mix(ws_BxNxW, mixed_BxNxW, key, prob: float):
  """ws, with the layers from a cutoff in [1, N) on taken from `mixed`, with probability
  `prob` (one cutoff for the batch, as the reference's run_G)."""
  n = ws_BxNxW.shape[1]
  cut_key, p_key = jax.random.split(key)
  cutoff = jax.random.randint(cut_key, (), 1, n)
  cutoff = jnp.where(jax.random.uniform(p_key) < prob, cutoff, n)
  take = (jnp.arange(n) >= cutoff)[None, :, None]
  return jnp.where(take, mixed_BxNxW, ws_BxNxW)


def truncate(ws_BxNxW, w_avg_W, psi: float):
  """w_avg + psi (w - w_avg) (Karras et al. 2019, Sec. 3.2, the "truncation trick" in W)."""
  return w_avg_W + psi * (ws_BxNxW - w_avg_W)


# -- construction ------------------------------------------------------------------------------
def _resolution(image_shape) -> int:
  h, w, _ = image_shape
  side = max(h, w)
  return max(4, 1 << (side - 1).bit_length())


def _networks(config, image_shape):
  model = methods.section(config, 'model')
  res = _resolution(image_shape)
  common = dict(resolution=res, channels=int(image_shape[-1]),
                channel_base=int(model.get('channel_base', 32768)),
                channel_max=int(model.get('channel_max', 512)),
                num_bf16_res=int(model.get('num_bf16_res', 0)),
                conv_clamp=model.get('conv_clamp', None),
                batch_split=batch_split.from_config(config, CPU_SPLITS))
  generator = stylegan2_models.Generator(
      z_dim=int(model.get('z_dim', 512)), w_dim=int(model.get('w_dim', 512)),
      mapping_layers=int(model.get('mapping_layers', 8)),
      mapping_lr_multiplier=float(model.get('mapping_lr_multiplier', 0.01)),
      modconv_impl=one_of(model.get('modconv_impl', 'activation'),
                          stylegan2_models.MODCONV_IMPLS, 'model.modconv_impl'), **common)
  discriminator = stylegan2_models.Discriminator(
      mbstd_group_size=int(model.get('mbstd_group_size', 4)),
      mbstd_num_channels=int(model.get('mbstd_num_channels', 1)),
      architecture=one_of(model.get('d_architecture', 'resnet'),
                          stylegan2_models.D_ARCHITECTURES, 'model.d_architecture'), **common)
  return generator, discriminator


def _truncation_psi(sample) -> float:
  """sample.truncation_psi, in [0, 1] unless sample.extrapolate says a value outside is meant
  (psi > 1 exaggerates the distance from w_avg, psi < 0 reflects through it)."""
  psi = float(sample.get('truncation_psi', 1.0))
  if not 0.0 <= psi <= 1.0 and not sample.get('extrapolate', False):
    raise UserError(f'config.sample.truncation_psi={psi}: truncation takes psi in [0, 1] (1: none, '
                    '0: every sample the average w); to go past the average on purpose, also set '
                    '--config.sample.extrapolate=True.')
  return psi


def _optimizer(config, section: str, interval: int):
  """config.<section> with the lazy-regularisation correction applied (Adam only)."""
  opt = methods.section(config, section).copy_and_resolve_references()
  if opt.get('name', 'adam') != 'adam':
    raise UserError(f'config.{section}.name={opt.get("name")!r}: StyleGAN2 trains with adam '
                    '(its lazy-regularisation correction is of Adam\'s learning rate and betas).')
  lr, (b1, b2) = lazy_regularization(float(opt.get('learning_rate', 0.002)),
                                     (float(opt.get('b1', 0.0)), float(opt.get('b2', 0.99))),
                                     interval)
  opt.update(learning_rate=lr, b1=b1, b2=b2)
  corrected = ml_collections.ConfigDict({section: opt,
                                         'num_train_steps': config.num_train_steps})
  return optim.make_optimizer(corrected, section)


@flax.struct.dataclass
class Networks:
  """The generator and discriminator of a config, with the maps between data and network
  images: what training, evaluation, editing (genlab/methods/stylegan2_edit.py) and path
  length (genlab/metrics) share. Parameters are passed in (a state's g_params or
  ema_params); `w_avg` is the state's."""
  generator: Any = flax.struct.field(pytree_node=False)
  discriminator: Any = flax.struct.field(pytree_node=False)
  image_shape: tuple = flax.struct.field(pytree_node=False)   # the data's (H, W, C)

  @property
  def resolution(self) -> int:
    """The networks' side (the data's, padded to a power of two)."""
    return self.generator.resolution

  @property
  def num_ws(self) -> int:
    return self.generator.num_ws

  @property
  def z_dim(self) -> int:
    return self.generator.z_dim

  def map(self, g_params, z_BxZ):
    """z -> ws (B, num_ws, w_dim), untruncated."""
    return self.generator.apply({'params': g_params}, z_BxZ, method='map')

  def synthesize(self, g_params, ws_BxNxW, key=None, noise_mode='random', noise=None):
    """ws -> images in [-1, 1] at resolution x resolution (`noise`: per-layer overrides)."""
    kwargs = {} if noise is None else {'noise': noise}
    rngs = {} if key is None else {'noise': key}
    return self.generator.apply({'params': g_params}, ws_BxNxW, noise_mode, rngs=rngs,
                                method='synthesize', **kwargs)

  def to_network(self, images_unit):
    """[0, 1] data -> [-1, 1] at resolution x resolution (a black border)."""
    h, w = self.image_shape[:2]
    res = self.resolution
    x = images_unit * 2.0 - 1.0
    if (h, w) == (res, res):
      return x
    top, left = (res - h) // 2, (res - w) // 2
    return jnp.pad(x, ((0, 0), (top, res - h - top), (left, res - w - left), (0, 0)),
                   constant_values=-1.0)

  def to_data(self, img):
    """Network output -> [0, 1] at the data's shape."""
    h, w = self.image_shape[:2]
    top, left = (self.resolution - h) // 2, (self.resolution - w) // 2
    img = img[:, top:top + h, left:left + w]
    return jnp.clip((img + 1.0) * 0.5, 0.0, 1.0)


def networks(config: ml_collections.ConfigDict, image_shape) -> Networks:
  image_shape = tuple(int(d) for d in image_shape)
  generator, discriminator = _networks(config, image_shape)
  return Networks(generator=generator, discriminator=discriminator, image_shape=image_shape)


def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  nets = networks(config, data_info.image_shape)
  image_shape, res = nets.image_shape, nets.resolution
  generator, discriminator = nets.generator, nets.discriminator
  model, loss = methods.section(config, 'model'), methods.section(config, 'loss')
  z_dim = int(model.get('z_dim', 512))
  w_avg_beta = float(model.get('w_avg_beta', 0.995))
  r1_gamma, r1_interval = float(loss.get('r1_gamma', 10.0)), int(loss.get('r1_interval', 16))
  pl_weight, pl_interval = float(loss.get('pl_weight', 2.0)), int(loss.get('pl_interval', 4))
  pl_shrink, pl_decay = int(loss.get('pl_batch_shrink', 2)), float(loss.get('pl_decay', 0.01))
  mixing = float(loss.get('style_mixing_prob', 0.9))
  ema_kimg = float(config.get('ema_kimg', 10.0))
  ema_rampup = float(config.get('ema_rampup', None) or 0.0)
  psi = _truncation_psi(methods.section(config, 'sample'))
  aug = gan.augment_settings(config)
  batch_size = int(config.batch_size)
  group = int(model.get('mbstd_group_size', 4))
  eval_batch = int(methods.section(config, 'eval').get('batch_size', batch_size))
  for what, n in (('config.batch_size', batch_size),
                  ('config.batch_size / loss.pl_batch_shrink', batch_size // pl_shrink),
                  ('config.eval.batch_size', eval_batch)):
    if n < 1 or n % min(group, n):
      raise UserError(f'{what} = {n} is not divisible by the minibatch-stddev group '
                      f'(model.mbstd_group_size={group}): make it a multiple of {group}.')
  g_tx, g_schedule = _optimizer(config, 'g_optimizer', pl_interval)
  d_tx, _ = _optimizer(config, 'd_optimizer', r1_interval)
  vz = methods.section(config, 'viz')
  num_viz = int(vz.get('num_samples', 64))
  to_network, to_data = nets.to_network, nets.to_data
  mapped, synthesized = nets.map, nets.synthesize

  def critic(d_params, x):
    return discriminator.apply({'params': d_params}, x)

  def init(key):
    g_key, d_key = jax.random.split(key)
    g_params = generator.init({'params': g_key, 'noise': g_key},
                              jnp.zeros((1, z_dim), jnp.float32))['params']
    d_params = discriminator.init(d_key, jnp.zeros((group, res, res, image_shape[-1]),
                                                   jnp.float32))['params']
    return StyleGAN2State(
        step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params),
        w_avg=jnp.zeros((int(model.get('w_dim', 512)),), jnp.float32),
        pl_mean=jnp.zeros((), jnp.float32),
        reg={'r1_penalty': jnp.zeros((), jnp.float32), 'pl_penalty': jnp.zeros((), jnp.float32)},
        ada=gan.initial_ada(aug))

  def run_generator(g_params, key, n):
    """The reference's run_G: z -> ws (style-mixed) -> image; also the batch mean of w for
    the running average (the mixing z does not update it)."""
    z_key, mix_z_key, mix_key, noise_key = jax.random.split(key, 4)
    ws = mapped(g_params, jax.random.normal(z_key, (n, z_dim), jnp.float32))
    w_mean = jnp.mean(jax.lax.stop_gradient(ws[:, 0]), axis=0)
    if mixing > 0:
      mixed = mapped(g_params, jax.random.normal(mix_z_key, (n, z_dim), jnp.float32))
      ws = style_mix(ws, mixed, mix_key, mixing)
    return ws, noise_key, w_mean

  def seen(x, key, p):
    return gan.discriminator_view(aug, x, key, p)

  def update_w_avg(w_avg, w_mean):
    return w_mean + (w_avg - w_mean) * w_avg_beta  # lerp(mean w, w_avg, beta)

  def g_main(state, d_params, key, p):
    def loss_fn(g_params):
      ws, noise_key, w_mean = run_generator(g_params, key, batch_size)
      logits = critic(d_params, seen(synthesized(g_params, ws, noise_key),
                                     jax.random.fold_in(key, 7), p))
      return jnp.mean(jax.nn.softplus(-logits)), w_mean

    (g_loss, w_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    updates, opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    return (optax.apply_updates(state.g_params, updates), opt_state,
            update_w_avg(state.w_avg, w_mean), g_loss, optax.global_norm(grads))

  def g_reg(operands):
    g_params, opt_state, w_avg, pl_mean, reg, key = operands
    n = batch_size // pl_shrink

    def loss_fn(g_params):
      ws, noise_key, w_mean = run_generator(g_params, key, n)
      lengths = path_lengths(lambda v: synthesized(g_params, v, noise_key), ws,
                             jax.random.fold_in(key, 9))
      new_mean = pl_mean + (jnp.mean(lengths) - pl_mean) * pl_decay
      penalty = jnp.square(lengths - jax.lax.stop_gradient(new_mean))
      return jnp.mean(penalty) * pl_weight * pl_interval, (
          jax.lax.stop_gradient(new_mean), jnp.mean(penalty), w_mean)

    (_, (new_mean, penalty, w_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        g_params)
    updates, opt_state = g_tx.update(grads, opt_state, g_params)
    return (optax.apply_updates(g_params, updates), opt_state, update_w_avg(w_avg, w_mean),
            new_mean, dict(reg, pl_penalty=penalty), key)

  def d_main(state, g_params, real, key, p):
    ws, noise_key, w_mean = run_generator(g_params, key, batch_size)
    fake = jax.lax.stop_gradient(synthesized(g_params, ws, noise_key))
    fake = seen(fake, jax.random.fold_in(key, 7), p)
    real_seen = seen(real, jax.random.fold_in(key, 8), p)

    def loss_fn(d_params):
      fake_B, real_B = critic(d_params, fake), critic(d_params, real_seen)
      loss = jnp.mean(jax.nn.softplus(fake_B) + jax.nn.softplus(-real_B))
      return loss, {'d_loss': loss, 'd_real': jnp.mean(real_B), 'd_fake': jnp.mean(fake_B),
                    'r_t': jnp.mean(jnp.sign(real_B))}

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    updates, opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
    metrics['d_grad_norm'] = optax.global_norm(grads)
    return optax.apply_updates(state.d_params, updates), opt_state, w_mean, metrics

  def d_reg(operands):
    d_params, opt_state, reg, real, key, p = operands

    def loss_fn(d_params):
      # The gradient is taken at the un-augmented reals, through the augmentation (as the
      # reference's real_img_tmp).
      penalty = gan.r1_penalty(lambda x: critic(d_params, seen(x, key, p)), real)
      return jnp.mean(penalty) * (r1_gamma / 2) * r1_interval, jnp.mean(penalty)

    (_, penalty), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    updates, opt_state = d_tx.update(grads, opt_state, d_params)
    return optax.apply_updates(d_params, updates), opt_state, dict(reg, r1_penalty=penalty), \
        real, key, p

  def phase(step: int) -> str:
    """Which phases step `step` runs (the reference's batch_idx % interval == 0)."""
    regs = [name for name, on, k in (('pl', pl_weight > 0, pl_interval),
                                     ('r1', r1_gamma > 0, r1_interval)) if on and step % k == 0]
    return '+'.join(['main'] + regs)

  def maybe(run, name, phase, operands):
    return run(operands) if name in phase.split('+') else operands

  def train_step(state, batch, key, phase: str):
    real = to_network(batch['image'])
    p = state.ada['p']
    g_params, g_opt_state, w_avg, g_loss, g_grad_norm = g_main(
        state, state.d_params, jax.random.fold_in(key, 0), p)
    operands = (g_params, g_opt_state, w_avg, state.pl_mean, state.reg,
                jax.random.fold_in(key, 1))
    if pl_weight > 0:
      operands = maybe(g_reg, 'pl', phase, operands)
    g_params, g_opt_state, w_avg, pl_mean, reg, _ = operands
    d_params, d_opt_state, w_mean, d_metrics = d_main(state, g_params, real,
                                                      jax.random.fold_in(key, 2), p)
    w_avg = update_w_avg(w_avg, w_mean)
    operands = (d_params, d_opt_state, reg, real, jax.random.fold_in(key, 3), p)
    if r1_gamma > 0:
      operands = maybe(d_reg, 'r1', phase, operands)
    d_params, d_opt_state, reg = operands[:3]
    beta = (ema_beta(state.step, batch_size, ema_kimg, ema_rampup) if ema_kimg > 0
            else jnp.float32(0.0))
    ema_params = jax.tree.map(lambda e, g: g + (e - g) * beta, state.ema_params, g_params)
    ada = (gan.next_ada(aug, state.ada, d_metrics['r_t'], batch_size) if aug['kind'] == 'ada'
           else state.ada)
    new_state = StyleGAN2State(
        step=state.step + 1, g_params=g_params, d_params=d_params, g_opt_state=g_opt_state,
        d_opt_state=d_opt_state, ema_params=ema_params, w_avg=w_avg, pl_mean=pl_mean, reg=reg,
        ada=ada)
    metrics = dict(d_metrics, loss=d_metrics['d_loss'], g_loss=g_loss, g_grad_norm=g_grad_norm,
                   pl_mean=pl_mean, ema_beta=beta, **reg,
                   learning_rate=jnp.asarray(g_schedule(state.step), jnp.float32))
    if aug['kind'] == 'ada':
      metrics['augment_p'] = p
    return new_state, metrics

  def generate(state, key, n, psis=None):
    """n EMA samples in [-1, 1] at res x res, truncated towards w_avg by sample.truncation_psi;
    with `psis`, the same n latents at each psi in turn (len(psis) x n images)."""
    z_key, noise_key = jax.random.split(key)
    ws = mapped(state.ema_params, jax.random.normal(z_key, (n, z_dim), jnp.float32))
    ws = jnp.concatenate([truncate(ws, state.w_avg, p) for p in (psis or (psi,))])
    return synthesized(state.ema_params, ws, noise_key)

  def sample(state, key, n):
    return to_data(generate(state, key, n)).astype(jnp.float32)

  def eval_step(state, batch, key):
    """Sums over real rows: D on held-out reals and as many EMA samples (a d_accuracy far
    above the training one means D overfits)."""
    mask_B = batch['mask']
    n = mask_B.shape[0]
    real_B = critic(state.d_params, to_network(batch['image']))
    fake_B = critic(state.d_params, generate(state, key, n))
    per_example = {'d_loss': jax.nn.softplus(fake_B) + jax.nn.softplus(-real_B),
                   'g_loss': jax.nn.softplus(-fake_B), 'd_real': real_B, 'd_fake': fake_B,
                   'd_accuracy': 0.5 * ((real_B > 0).astype(jnp.float32) +
                                        (fake_B < 0).astype(jnp.float32))}
    return {k: jnp.sum(jnp.where(mask_B > 0, v, 0.0)) for k, v in per_example.items()}

  psi_rows = (1.0, 0.7, 0.5, 0.2, 0.0)
  draw_truncated = jax.jit(lambda state, key: to_data(generate(state, key, 10, psi_rows)))
  draw = jax.jit(sample, static_argnums=2)

  def visualize(state, key, batch):
    """The same noise at every eval: a grid of samples, and a truncation grid (rows: psi 1,
    0.7, 0.5, 0.2, 0; columns: ten z)."""
    del batch
    ncols = math.ceil(math.sqrt(num_viz))
    grids = {'samples': viz.image_grid(np.asarray(draw(state, key, num_viz)), ncols)}
    rows = np.asarray(draw_truncated(state, jax.random.fold_in(key, 1)))
    grids['truncation'] = viz.image_grid(rows, 10)
    return grids

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step, sample=sample,
                        visualize=visualize, phase=phase)
