"""Denoising diffusion: DDPM (Ho et al. 2020), DDIM sampling (Song et al. 2021) and
classifier-free guidance (Ho & Salimans 2022).

Images in [0, 1] are scaled to x_0 in [-1, 1]. With a schedule of betas b_1..b_T,
a_t = 1 - b_t and abar_t = prod_{s<=t} a_s (index t - 1 in the arrays below):
  forward process  q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)          Ho et al., Eq. 4
  training         L_simple = E_{t, x_0, eps} |eps - eps_theta(x_t, t)|^2,
                   t ~ U{1..T}, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps   Ho et al., Eq. 14
                   (the mean over pixels); a conditional model sees its label replaced by
                   the null label with probability diffusion.p_uncond     Ho & Salimans, Alg. 1
  schedules        'linear': b_t from 1e-4 to 0.02 at T = 1000 (scaled by 1000 / T for
                   other T)                                                  Ho et al., Sec. 4
                   'cosine': abar_t = f(t) / f(0), f(t) = cos((t/T + s) / (1 + s) pi / 2)^2,
                   s = 0.008, b_t clipped to 0.999               Nichol & Dhariwal 2021, Eq. 17

Sampling runs over a subsequence tau_S > ... > tau_1 of the T steps (sampler.steps = S; all
T when S = T), one jitted `lax.scan`. Each step predicts x_0 = (x_t - sqrt(1 - abar_t) eps) /
sqrt(abar_t), clipped to [-1, 1] (diffusion.clip_denoised, as the reference code), and
  'ancestral'  x_{t'} ~ q(x_{t'} | x_t, x_0) with mean from Ho et al. Eq. 7 and variance
               beta_t (diffusion.variance = 'beta', Ho's Algorithm 2) or the posterior's
               beta~_t ('posterior'), over the respaced betas b_t = 1 - abar_t / abar_{t'}
               (Nichol & Dhariwal 2021, Sec. 4)
  'ddim'       x_{t'} = sqrt(abar_{t'}) x_0 + sqrt(1 - abar_{t'} - s^2) eps + s z,
               s = eta sqrt((1 - abar_{t'}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t'})
                                                                 Song et al. 2021, Eq. 12, 16
where t' is the previous element of the subsequence (abar = 1 before the first). With
classifier-free guidance the noise estimate is (1 + w) eps(x_t, y) - w eps(x_t, null)
(Ho & Salimans 2022, Eq. 6), w = sampler.guidance; samples of a conditional model cycle
through the classes (row i has class i % num_classes).

The variational bound (Ho et al. 2020, Eq. 5) in bits per dimension, for 8-bit data:
  L = L_T + sum_{t=2..T} L_{t-1} + L_0,
  L_T     = KL(q(x_T | x_0) || N(0, I))
  L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p_theta(x_{t-1} | x_t)), both Gaussian
  L_0     = -log p_theta(x_0 | x_1), the discretised Gaussian decoder over the 256 bins of
            width 2/255 (Ho et al., Eq. 13; the edge bins reach to -inf and +inf)
the sum over t estimated without bias by stratified sampling: eval.bound_timesteps = K
strata of {2..T}, one t drawn in each, weighted (T - 1) / K (exact when K >= T - 1). Nats
per image / (D ln 2) gives bits per dimension, D = H W C. A conditional model's bound is that
of p(x), its network with the null label.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.scipy.stats import norm

from genlab import batch_split
from genlab import methods
from genlab import optim
from genlab import viz
from genlab.config_checks import Range, count, fraction, natural, non_negative
from genlab.errors import UserError, int_at_least, one_of
from genlab.methods.gan import ema_decay
from genlab.models import unet as unet_lib

SCHEDULES = ('linear', 'cosine')
SAMPLERS = ('ancestral', 'ddim')
VARIANCES = ('beta', 'posterior')
# config.batch_split='auto' on the CPU (genlab/batch_split.py): the U-Net step at batch 64 took
# 295 ms whole, 207 / 193 / 229 ms in 2 / 4 / 8 slices.
CPU_SPLITS = 4

CONFIG_RANGES = {
    'ema_decay': fraction('0 turns the EMA off'),
    'diffusion.timesteps': count(), 'diffusion.beta_*': Range(low=0, high=1, low_open=True),
    'diffusion.p_uncond': fraction('the probability of training without the label'),
    'sampler.steps': count('the number of denoising steps'),
    'sampler.eta': Range(low=0, high=1, why="DDIM's eta: 0 deterministic, 1 ancestral-like"),
    'sampler.guidance': non_negative('the classifier-free guidance scale w; 0: none'),
    'model.channels': count(), 'model.channel_mults': count(), 'model.num_res_blocks': count(),
    'model.attention_resolutions': natural(), 'model.dropout': fraction(),
    'model.norm_groups': count(), 'model.patch_size': count(),
    'eval.bound_timesteps': count(), 'eval.test_bound_timesteps': count(),
    'viz.num_samples': count(), 'viz.strip_rows': count(),
    'viz.strip_frames': Range(low=2, integer=True, why='x_T, x_0 and what lies between'),
}


@flax.struct.dataclass
class DiffusionState:
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any    # EMA of params: what eval, samples and pictures use


# -- schedules -------------------------------------------------------------------------------
def betas(kind: str, timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02):
  """The T betas of a schedule, float64 (see the module docstring)."""
  if kind == 'linear':
    scale = 1000.0 / timesteps
    return np.linspace(scale * beta_start, min(scale * beta_end, 0.999), timesteps)
  if kind == 'cosine':
    s = 0.008
    f = np.cos((np.arange(timesteps + 1) / timesteps + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1.0 - f[1:] / f[:-1], 0.999)
  raise ValueError(kind)


def subsequence(timesteps: int, steps: int) -> np.ndarray:
  """`steps` increasing indices evenly spaced over 0..T-1: the last is always T - 1 (pure
  noise), the first 0 when steps > 1, all T when steps = T."""
  return np.round(np.linspace(timesteps - 1, 0, steps))[::-1].astype(np.int32)


def gaussian_kl(mean1, logvar1, mean2, logvar2):
  """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
  return 0.5 * (-1.0 + logvar2 - logvar1 + jnp.exp(logvar1 - logvar2)
                + jnp.square(mean1 - mean2) * jnp.exp(-logvar2))


def discretized_gaussian_log_likelihood(x, mean, log_scale):
  """log of the N(mean, e^(2 log_scale)) mass of the bin of width 2/255 around each x in
  [-1, 1] (Ho et al. 2020, Eq. 13), the end bins open to -inf / +inf; elementwise."""
  inv = jnp.exp(-log_scale)
  upper, lower = (x - mean + 1.0 / 255.0) * inv, (x - mean - 1.0 / 255.0) * inv
  log_cdf_upper = norm.logcdf(upper)
  log_one_minus_cdf_lower = norm.logcdf(-lower)
  # log(Phi(u) - Phi(l)) = log Phi(u) + log(1 - exp(log Phi(l) - log Phi(u))).
  log_mid = log_cdf_upper + jnp.log(-jnp.expm1(
      jnp.minimum(norm.logcdf(lower) - log_cdf_upper, -1e-12)))
  return jnp.where(x < -0.999, log_cdf_upper,
                   jnp.where(x > 0.999, log_one_minus_cdf_lower, log_mid))


@dataclasses.dataclass(frozen=True)
class Schedule:
  """The constants of a noise schedule, float64 numpy, index t - 1 for step t."""
  beta: np.ndarray
  variance: str = 'beta'      # the reverse steps' variance: 'beta' or 'posterior'
  clip: bool = True           # clip the predicted x_0 to [-1, 1]

  @property
  def timesteps(self) -> int:
    return len(self.beta)

  @property
  def abar(self) -> np.ndarray:
    return np.cumprod(1.0 - self.beta)

  def logvars(self) -> tuple[jax.Array, jax.Array]:
    """log of the posterior variance beta~_t and of the model's, float32 (T,). At t = 1 both
    are beta~_2 (beta~_1 is 0), as the reference code's clipped log variances."""
    abar_prev = np.append(1.0, self.abar[:-1])
    post = self.beta * (1.0 - abar_prev) / (1.0 - self.abar)
    model = self.beta if self.variance == 'beta' else post
    first = post[1] if len(post) > 1 else self.beta[0]
    as_log = lambda v: jnp.asarray(np.log(np.append(first, v[1:])), jnp.float32)
    return as_log(post), as_log(model)


def predict_x0(schedule: Schedule, x_t, eps, abar):
  """x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar) and the eps consistent with it, after
  clipping x_0 to the data range when the schedule asks."""
  x0 = (x_t - jnp.sqrt(1.0 - abar) * eps) / jnp.sqrt(abar)
  if not schedule.clip:
    return x0, eps
  x0 = jnp.clip(x0, -1.0, 1.0)
  return x0, (x_t - jnp.sqrt(abar) * x0) / jnp.sqrt(1.0 - abar)


def posterior_mean(x0, x_t, abar, abar_prev):
  """Mean of q(x_{t'} | x_t, x_0) (Ho et al. 2020, Eq. 7) over the respaced step t -> t'."""
  beta = 1.0 - abar / abar_prev
  return (jnp.sqrt(abar_prev) * beta / (1.0 - abar) * x0
          + jnp.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar) * x_t)


def sample_loop(eps_fn, schedule: Schedule, key, shape, *, sampler: str, steps: int,
                eta: float = 0.0, trajectory: bool = False):
  """x_T ~ N(0, I) -> x_0 over `steps` steps of the subsequence, one lax.scan (module
  docstring). eps_fn(x_t, t_B) predicts the noise (t as the 0-based index). With `trajectory`
  returns (x_0, x_T, the x_t after every step)."""
  taus = subsequence(schedule.timesteps, steps)
  abar_S = schedule.abar[taus].astype(np.float32)
  abar_prev_S = np.append(1.0, schedule.abar[taus][:-1]).astype(np.float32)
  init_key, loop_key = jax.random.split(key)
  x_T = jax.random.normal(init_key, shape, jnp.float32)

  def body(x_t, inputs):
    i, t, abar, abar_prev = inputs
    x0, eps = predict_x0(schedule, x_t, eps_fn(x_t, jnp.full(shape[:1], t)), abar)
    z = jax.random.normal(jax.random.fold_in(loop_key, i), shape, jnp.float32)
    if sampler == 'ancestral':
      beta = 1.0 - abar / abar_prev
      var = beta if schedule.variance == 'beta' else beta * (1.0 - abar_prev) / (1.0 - abar)
      x_prev = posterior_mean(x0, x_t, abar, abar_prev) + jnp.where(i > 0, jnp.sqrt(var), 0) * z
    else:  # Song et al. 2021, Eq. 12 with sigma of Eq. 16
      sigma = eta * jnp.sqrt((1.0 - abar_prev) / (1.0 - abar) * (1.0 - abar / abar_prev))
      x_prev = (jnp.sqrt(abar_prev) * x0
                + jnp.sqrt(jnp.maximum(1.0 - abar_prev - sigma ** 2, 0.0)) * eps + sigma * z)
    return x_prev, (x_prev if trajectory else None)

  xs = (jnp.arange(steps)[::-1], jnp.asarray(taus[::-1]), jnp.asarray(abar_S[::-1]),
        jnp.asarray(abar_prev_S[::-1]))
  x0, path = jax.lax.scan(body, x_T, xs)
  return (x0, x_T, path) if trajectory else x0


def bound_terms(eps_fn, schedule: Schedule, x0, key, num_t: int):
  """The variational bound of each image (module docstring), nats: (L_T, the stratified
  estimate of sum_{t>=2} L_{t-1}, L_0, the mean simple loss over the drawn t)."""
  b, timesteps = x0.shape[0], schedule.timesteps
  abar_T = jnp.asarray(schedule.abar, jnp.float32)
  post_logvar_T, model_logvar_T = schedule.logvars()
  sum_dims = lambda v: jnp.sum(v, axis=tuple(range(1, v.ndim)))
  expand = lambda v_B: v_B.reshape((b,) + (1,) * (x0.ndim - 1))
  prior_kl = sum_dims(gaussian_kl(jnp.sqrt(abar_T[-1]) * x0, jnp.log(1.0 - abar_T[-1]),
                                  0.0, 0.0))
  k = min(num_t, timesteps - 1)
  width = (timesteps - 1) / max(k, 1)

  def term(t_B, term_key):
    """L_{t-1} at index t - 1 >= 1, -log p(x_0 | x_1) at index 0; and the simple loss."""
    eps = jax.random.normal(term_key, x0.shape, jnp.float32)
    abar = expand(abar_T[t_B])
    x_t = jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps
    pred = eps_fn(x_t, t_B)
    x0_hat, _ = predict_x0(schedule, x_t, pred, abar)
    abar_prev = expand(jnp.where(t_B > 0, abar_T[jnp.maximum(t_B - 1, 0)], 1.0))
    logvar = expand(model_logvar_T[t_B])
    kl = sum_dims(gaussian_kl(posterior_mean(x0, x_t, abar, abar_prev),
                              expand(post_logvar_T[t_B]),
                              posterior_mean(x0_hat, x_t, abar, abar_prev), logvar))
    decoder_nll = -sum_dims(discretized_gaussian_log_likelihood(x0, x0_hat, 0.5 * logvar))
    simple = jnp.mean(jnp.square(pred - eps), axis=tuple(range(1, x0.ndim)))
    return jnp.where(t_B > 0, kl, decoder_nll), simple

  decoder_key, strata_key = jax.random.split(key)
  decoder_nll, simple0 = term(jnp.zeros((b,), jnp.int32), decoder_key)
  if not k:
    return prior_kl, jnp.zeros((b,)), decoder_nll, simple0

  def stratum(carry, j):
    u_key, eps_key = jax.random.split(jax.random.fold_in(strata_key, j))
    u = jax.random.uniform(u_key, (b,))
    t_B = 1 + jnp.minimum(jnp.floor((j + u) * width), timesteps - 2).astype(jnp.int32)
    value, simple = term(t_B, eps_key)
    return (carry[0] + width * value, carry[1] + simple / k), None

  (middle, simple), _ = jax.lax.scan(stratum, (jnp.zeros((b,)), jnp.zeros((b,))),
                                     jnp.arange(k))
  return prior_kl, middle, decoder_nll, simple


# -- construction ----------------------------------------------------------------------------
def _settings(config, data_info) -> dict:
  model, diff = methods.section(config, 'model'), methods.section(config, 'diffusion')
  sampler = methods.section(config, 'sampler')
  timesteps = int_at_least(diff.get('timesteps', 1000), 1, 'diffusion.timesteps')
  num_classes = methods.conditional_classes(config, data_info)
  steps = int_at_least(sampler.get('steps', timesteps), 1, 'sampler.steps')
  if steps > timesteps:
    raise UserError(f'config.sampler.steps={steps} is more than the {timesteps} steps the model '
                    f'was trained with (diffusion.timesteps): give 1..{timesteps}.')
  eta = float(sampler.get('eta', 0.0))
  if not 0.0 <= eta <= 1.0:
    raise UserError(f"config.sampler.eta={eta}: DDIM's eta is in [0, 1] (0 deterministic, 1 "
                    'the ancestral variance).')
  guidance = float(sampler.get('guidance', 0.0))
  if guidance and not num_classes:
    raise UserError(f'config.sampler.guidance={guidance} needs a class-conditional model, but '
                    'this one is unconditional (model.conditional=False): set '
                    '--config.sampler.guidance=0, or train a conditional model '
                    '(configs/ddpm_cond_mnist.py).')
  return dict(
      timesteps=timesteps,
      schedule=one_of(diff.get('schedule', 'linear'), SCHEDULES, 'diffusion.schedule'),
      beta_start=float(diff.get('beta_start', 1e-4)), beta_end=float(diff.get('beta_end', 0.02)),
      variance=one_of(diff.get('variance', 'beta'), VARIANCES, 'diffusion.variance'),
      clip=bool(diff.get('clip_denoised', True)),
      p_uncond=float(diff.get('p_uncond', 0.1)) if num_classes else 0.0,
      num_classes=num_classes,
      sampler=one_of(sampler.get('kind', 'ancestral'), SAMPLERS, 'sampler.kind'),
      steps=steps, eta=eta, guidance=guidance,
      ema_decay=float(config.get('ema_decay', 0.9999)))


def build_model(config, num_classes: int) -> unet_lib.UNet:
  model = methods.section(config, 'model')
  attention = tuple(int(r) for r in model.get('attention_resolutions', ()))
  return unet_lib.UNet(
      channels=int(model.get('channels', 64)),
      channel_mults=tuple(int(m) for m in model.get('channel_mults', (1, 2, 2))),
      num_res_blocks=int(model.get('num_res_blocks', 2)),
      attention_resolutions=attention, dropout=float(model.get('dropout', 0.1)),
      norm_groups=int(model.get('norm_groups', 32)), num_classes=num_classes,
      downsample=one_of(model.get('downsample', 'conv'), unet_lib.DOWNSAMPLES,
                        'model.downsample'),
      patch_size=int(model.get('patch_size', 1)),
      conv_impl=model.get('conv_impl', 'xla'),
      dtype=jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'),
                              'model.dtype')))


def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  s = _settings(config, data_info)
  image_shape = tuple(int(d) for d in data_info.image_shape)
  dims = math.prod(image_shape)
  num_classes, timesteps = s['num_classes'], s['timesteps']
  net = build_model(config, num_classes)
  tx, lr_schedule = optim.make_optimizer(config)
  ev, vz = methods.section(config, 'eval'), methods.section(config, 'viz')
  bound_k = int(ev.get('bound_timesteps', 10))
  test_bound_k = int(ev.get('test_bound_timesteps', 100))
  num_viz = int(vz.get('num_samples', 64))
  strip_rows, strip_frames = int(vz.get('strip_rows', 8)), int(vz.get('strip_frames', 10))

  schedule = Schedule(betas(s['schedule'], timesteps, s['beta_start'], s['beta_end']),
                      variance=s['variance'], clip=s['clip'])
  abar_T = jnp.asarray(schedule.abar, jnp.float32)
  null_label = num_classes  # the UNet's extra embedding row

  def eps_model(params, x_t, t_B, labels, train=False, key=None):
    rngs = {'dropout': key} if train else None
    return net.apply({'params': params}, x_t, t_B, labels, train=train, rngs=rngs)

  def guided_eps_fn(params, labels, guidance):
    """eps_fn(x_t, t_B) of the sampler: the network, or with classifier-free guidance
    (1 + w) eps(x, y) - w eps(x, null) (Ho & Salimans 2022, Eq. 6), both in one batch."""
    def eps_fn(x_t, t_B):
      if not num_classes or not guidance:
        return eps_model(params, x_t, t_B, labels)
      both = eps_model(params, jnp.concatenate([x_t, x_t]), jnp.concatenate([t_B, t_B]),
                       jnp.concatenate([labels, jnp.full_like(labels, null_label)]))
      cond, uncond = jnp.split(both, 2)
      return (1.0 + guidance) * cond - guidance * uncond
    return eps_fn

  def init(key):
    x = jnp.zeros((1, *image_shape), jnp.float32)
    labels = jnp.zeros((1,), jnp.int32) if num_classes else None
    params = net.init({'params': key, 'dropout': key}, x, jnp.zeros((1,), jnp.int32),
                      labels)['params']
    return DiffusionState(step=jnp.zeros((), jnp.int32), params=params,
                          opt_state=tx.init(params), ema_params=jax.tree.map(jnp.copy, params))

  def diffuse(x0, key):
    """(t_B, eps, x_t): a uniform step and a draw of q(x_t | x_0) (Ho et al. 2020, Eq. 4)."""
    t_key, eps_key = jax.random.split(key)
    t_B = jax.random.randint(t_key, x0.shape[:1], 0, timesteps)
    eps = jax.random.normal(eps_key, x0.shape, jnp.float32)
    abar = abar_T[t_B][:, None, None, None]
    return t_B, eps, jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps

  def loss_fn(params, rows, key):
    x_t, t_B, labels, eps = rows
    pred = eps_model(params, x_t, t_B, labels, train=True, key=key)
    return jnp.mean(jnp.square(pred - eps))  # Ho et al. 2020, Eq. 14

  loss_and_grad = batch_split.value_and_grad(loss_fn, batch_split.from_config(config, CPU_SPLITS))

  def train_step(state, batch, key):
    x0 = batch['image'] * 2.0 - 1.0
    diffuse_key, drop_key, label_key = jax.random.split(key, 3)
    t_B, eps, x_t = diffuse(x0, diffuse_key)
    labels = None
    if num_classes:  # Ho & Salimans 2022, Algorithm 1: drop the label with p_uncond
      drop_B = jax.random.uniform(label_key, t_B.shape) < s['p_uncond']
      labels = jnp.where(drop_B, null_label, batch['label'])

    loss, grads = loss_and_grad(state.params, (x_t, t_B, labels, eps), drop_key)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = ema_decay(s['ema_decay'], state.step)
    new_state = state.replace(
        step=state.step + 1, params=params, opt_state=opt_state,
        ema_params=optax.incremental_update(params, state.ema_params, 1.0 - decay))
    return new_state, {'loss': loss, 'grad_norm': optax.global_norm(grads), 'ema_decay': decay,
                       'learning_rate': jnp.asarray(lr_schedule(state.step), jnp.float32)}

  # -- sampling --------------------------------------------------------------------------------
  def run_sampler(params, key, n, trajectory=False):
    eps_fn = guided_eps_fn(params, methods.sample_labels(n, num_classes), s['guidance'])
    return sample_loop(eps_fn, schedule, key, (n, *image_shape), sampler=s['sampler'],
                       steps=s['steps'], eta=s['eta'], trajectory=trajectory)

  def sample(state, key, n):
    return ((run_sampler(state.ema_params, key, n) + 1.0) * 0.5).astype(jnp.float32)

  def evaluate(state, batch, key, num_t):
    x0 = batch['image'] * 2.0 - 1.0
    mask_B = batch['mask']
    # p(x), the unconditional model (a conditional network's null label).
    labels = jnp.full(x0.shape[:1], null_label) if num_classes else None
    eps_fn = lambda x_t, t_B: eps_model(state.ema_params, x_t, t_B, labels)
    prior_kl, middle, decoder_nll, simple = bound_terms(eps_fn, schedule, x0, key, num_t)
    total = prior_kl + middle + decoder_nll
    per_example = {'bits_per_dim': total / (dims * math.log(2.0)), 'nll_bound': total,
                   'prior_kl': prior_kl, 'decoder_nll': decoder_nll, 'loss': simple}
    return {name: jnp.sum(jnp.where(mask_B > 0, v, 0.0)) for name, v in per_example.items()}

  # -- pictures ----------------------------------------------------------------------------------
  draw_grid = jax.jit(lambda params, key: run_sampler(params, key, num_viz))
  draw_strip = jax.jit(lambda params, key: run_sampler(params, key, strip_rows, trajectory=True))

  def visualize(state, key, batch):
    """Samples (the same noise at every eval; a conditional model's classes cycle along the
    rows) and denoising strips x_T .. x_0."""
    del batch
    to_unit = lambda x: np.clip((np.asarray(x) + 1.0) * 0.5, 0.0, 1.0)
    grid_key, strip_key = jax.random.split(key)
    grids = {'samples': viz.image_grid(to_unit(draw_grid(state.ema_params, grid_key)),
                                       math.ceil(math.sqrt(num_viz)))}
    _, x_T, path = draw_strip(state.ema_params, strip_key)
    picks = np.round(np.linspace(0, s['steps'] - 1, strip_frames - 1)).astype(int)
    frames = np.concatenate([np.asarray(x_T)[None], np.asarray(path)[picks]])  # T x R x ...
    grids['denoising'] = viz.interpolation_strip(to_unit(np.swapaxes(frames, 0, 1)))
    return grids

  return methods.Method(
      init=init, train_step=train_step,
      eval_step=lambda state, batch, key: evaluate(state, batch, key, bound_k),
      test_step=lambda state, batch, key: evaluate(state, batch, key, test_bound_k),
      sample=sample, visualize=visualize)
