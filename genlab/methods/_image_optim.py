"""Optimising images through a fixed network, for the methods that take `dataset='none'`:
neural style transfer, texture synthesis, DeepDream and class visualisation.

The train state is the images themselves, one array per scale (coarse to fine), with one
optimiser state per scale, so a run resumes exactly like a trained network does. Scale k
owns the steps [ends[k-1], ends[k]); its last step starts scale k+1 from its image (the
family's `grow`: plain upsampling for style transfer, upsampled detail over the sharper base
for DeepDream), with a fresh optimiser state. The step branches on the scale with
`lax.switch`, so one compiled step serves every scale and only the current one runs.

A family gives, per scale k, `objective(k, images, key) -> (loss, metrics)` (minimised; the
metrics are scalars reported at each evaluation), and the optimiser comes from
`config.optimizer`: L-BFGS (optax.lbfgs with its zoom line search; deterministic objectives
only), Adam, or normalised gradient descent (DeepDream's step: g / mean|g|).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genlab import viz
from genlab.errors import UserError, one_of
from genlab.methods import Method

OPTIMIZERS = ('lbfgs', 'adam', 'normalized_sgd')


@flax.struct.dataclass
class ImageState:
  step: jax.Array                 # int32 scalar
  images: tuple                   # float32 (N, h_k, w_k, C) per scale, coarse to fine
  opt_states: tuple               # the optimiser's state per scale


def scale_sizes(height: int, width: int, num_scales: int, factor: float
                ) -> list[tuple[int, int]]:
  """(h, w) of each scale, coarse to fine: the full size divided by factor^(num_scales-1-k)."""
  return [(max(1, round(height / factor ** (num_scales - 1 - k))),
           max(1, round(width / factor ** (num_scales - 1 - k)))) for k in range(num_scales)]


def scale_ends(num_steps: int, num_scales: int) -> np.ndarray:
  """The step at which each scale ends: the steps split evenly over the scales."""
  ends = np.round(np.arange(1, num_scales + 1) * num_steps / num_scales).astype(np.int32)
  if num_scales > 1 and np.any(np.diff(np.concatenate([[0], ends])) < 1):
    raise UserError(f'config.num_train_steps={num_steps} gives some of the {num_scales} scales '
                    'no step: give at least one step per scale.')
  return ends


def resize(images_NxHxWxC, hw: tuple[int, int]):
  """Bilinear (antialiased when shrinking) resize of a batch of images to (h, w)."""
  n, _, _, c = images_NxHxWxC.shape
  return jax.image.resize(images_NxHxWxC, (n, *hw, c), method='linear', antialias=True)


def jitter(x_NxHxWxC, key, max_shift: int):
  """x rolled by (dy, dx), each uniform in [-max_shift, max_shift] (DeepDream's np.roll in
  dream.ipynb's make_step); the gradient reaches the unrolled pixels."""
  if max_shift <= 0:
    return x_NxHxWxC
  shift = jax.random.randint(key, (2,), -max_shift, max_shift + 1)
  return jnp.roll(x_NxHxWxC, (shift[0], shift[1]), axis=(1, 2))


def total_variation(x_NxHxWxC):
  """sum of squared differences between neighbouring pixels (Mahendran & Vedaldi 2015, Eq. 5
  with beta = 2), per image summed over the batch."""
  dy = x_NxHxWxC[:, 1:] - x_NxHxWxC[:, :-1]
  dx = x_NxHxWxC[:, :, 1:] - x_NxHxWxC[:, :, :-1]
  return jnp.sum(dy ** 2) + jnp.sum(dx ** 2)


def _scale_by_mean_abs(eps: float = 1e-8) -> optax.GradientTransformation:
  """g -> g / mean|g| per image (Mordvintsev et al. 2015's DeepDream step), so the step size
  is in pixels whatever the layer's scale."""
  def update(updates, state, params=None):
    del params
    def norm(g):
      axes = tuple(range(1, g.ndim))
      return g / (jnp.mean(jnp.abs(g), axis=axes, keepdims=True) + eps)
    return jax.tree.map(norm, updates), state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config) -> tuple[optax.GradientTransformation, bool]:
  """(transformation, whether it is L-BFGS) from config.optimizer: name 'lbfgs' (memory_size,
  learning_rate None = the line search's step), 'adam' (learning_rate, b1, b2) or
  'normalized_sgd' (learning_rate: pixels per step, on [0, 1] images)."""
  opt = config.get('optimizer') or ml_collections.ConfigDict()
  name = one_of(opt.get('name', 'lbfgs'), OPTIMIZERS, 'optimizer.name')
  lr = opt.get('learning_rate', None)
  if name == 'lbfgs':
    return optax.lbfgs(learning_rate=lr, memory_size=int(opt.get('memory_size', 10))), True
  if lr is None or lr <= 0:
    raise UserError(f'config.optimizer.learning_rate={lr!r}: {name} needs a positive step size '
                    '(e.g. 0.02 for adam on [0, 1] pixels).')
  if name == 'adam':
    return optax.adam(lr, b1=opt.get('b1', 0.9), b2=opt.get('b2', 0.999)), False
  return optax.chain(_scale_by_mean_abs(), optax.scale(-lr)), False


@dataclasses.dataclass(frozen=True)
class Problem:
  """What a family optimises. `objective(k, image, key) -> (loss, metrics)` at scale k;
  `init(key) -> image` of scale 0; `grow(k, image) -> image` of scale k from scale k-1's;
  `clip` keeps pixels in [0, 1] after each step (not for L-BFGS, whose curvature pairs a
  projection would corrupt: its result is clipped instead); `project(step, image) -> image`
  changes the image after the optimiser's step of `step` (e.g. a blur every few steps; L-BFGS
  refuses it for the same reason); `show(images) -> images` maps the optimised images to what
  the result is (e.g. luminance back to colour)."""
  sizes: Sequence[tuple[int, int]]
  objective: Callable[[int, jax.Array, jax.Array], tuple[jax.Array, dict]]
  init: Callable[[jax.Array], jax.Array]
  grow: Callable[[int, jax.Array], jax.Array]
  clip: bool = True
  show: Optional[Callable[[jax.Array], jax.Array]] = None
  stochastic: bool = False  # the objective draws from `key` (jitter): L-BFGS refuses it
  project: Optional[Callable[[jax.Array, jax.Array], jax.Array]] = None


def build(config, problem: Problem, **extra: Any) -> Method:
  """The Method (init, train_step, eval_step, result, visualize, sample) of `problem`."""
  tx, lbfgs = make_optimizer(config)
  if lbfgs and problem.stochastic:
    raise UserError('config.optimizer.name=lbfgs needs a deterministic objective, but this '
                    'config jitters the image each step: use adam or normalized_sgd, or turn '
                    'the jitter off.')
  if lbfgs and problem.project is not None:
    raise UserError('config.optimizer.name=lbfgs cannot follow an image that is changed '
                    'between its steps (a blur every few steps corrupts its curvature pairs): '
                    'use adam or normalized_sgd, or turn the blur off.')
  num_scales = len(problem.sizes)
  ends = scale_ends(int(config.num_train_steps), num_scales)
  clip = problem.clip and not lbfgs

  def scale_of(step):
    return jnp.minimum(jnp.searchsorted(jnp.asarray(ends), step, side='right'), num_scales - 1)

  def init(key):
    first = problem.init(key)
    n, c = first.shape[0], first.shape[-1]
    images = (first,) + tuple(jnp.zeros((n, *hw, c), jnp.float32) for hw in problem.sizes[1:])
    state = ImageState(step=jnp.zeros((), jnp.int32), images=images,
                       opt_states=tuple(tx.init(x) for x in images))
    # optax.lbfgs starts some scalars weakly typed; the step's outputs are not, and a second
    # compilation of the step would follow.
    return jax.tree.map(lambda a: jnp.array(a, dtype=a.dtype), state)

  def branch(k):
    def value(x, key):
      return problem.objective(k, x, key)[0]

    def step(state, key):
      x, opt_state = state.images[k], state.opt_states[k]
      if lbfgs:
        loss, grad = optax.value_and_grad_from_state(lambda y: value(y, key))(x, state=opt_state)
        updates, opt_state = tx.update(grad, opt_state, x, value=loss, grad=grad,
                                       value_fn=lambda y: value(y, key))
      else:
        loss, grad = jax.value_and_grad(value)(x, key)
        updates, opt_state = tx.update(grad, opt_state, x)
      x = optax.apply_updates(x, updates)
      if clip:
        x = jnp.clip(x, 0.0, 1.0)
      if problem.project is not None:
        x = problem.project(state.step, x)
      images = list(state.images)
      opt_states = list(state.opt_states)
      images[k], opt_states[k] = x, opt_state
      if k + 1 < num_scales:  # The last step of scale k starts scale k+1.
        def start_next(_):
          grown = problem.grow(k + 1, x)
          return grown, tx.init(grown)
        images[k + 1], opt_states[k + 1] = jax.lax.cond(
            state.step == ends[k] - 1, start_next,
            lambda _: (images[k + 1], opt_states[k + 1]), None)
      return tuple(images), tuple(opt_states), loss
    return step

  branches = [branch(k) for k in range(num_scales)]

  def train_step(state, batch, key):
    del batch
    k = scale_of(state.step)
    images, opt_states, loss = jax.lax.switch(k, branches, state, key)
    return (ImageState(step=state.step + 1, images=images, opt_states=opt_states),
            {'loss': loss, 'scale': k.astype(jnp.float32)})

  def current_scale(state):  # the scale whose image the last step updated
    return scale_of(jnp.maximum(state.step - 1, 0))

  def eval_step(state, batch, key):
    del batch
    def evaluate(k):
      def fn(images):
        loss, metrics = problem.objective(k, images[k], key)
        return {'loss': loss, **metrics}
      return fn
    metrics = jax.lax.switch(current_scale(state), [evaluate(k) for k in range(num_scales)],
                             state.images)
    return {**metrics, 'scale': current_scale(state).astype(jnp.float32),
            '_count': jnp.float32(1)}

  def result(state):
    """The current scale's images at full size, clipped to [0, 1] and shown."""
    full = problem.sizes[-1]
    x = jax.lax.switch(current_scale(state),
                       [lambda images, k=k: resize(images[k], full) for k in range(num_scales)],
                       state.images)
    x = jnp.clip(x, 0.0, 1.0)
    return jnp.clip(problem.show(x), 0.0, 1.0) if problem.show is not None else x

  result_fn = jax.jit(result)

  def visualize(state, key, batch):
    del key, batch
    return {'current': viz.square_grid(np.asarray(result_fn(state)))}

  return Method(init=init, train_step=train_step, eval_step=eval_step, result=result,
                visualize=visualize, **extra)
