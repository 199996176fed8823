"""Digit classifier: the embedding network of genlab's sample-quality metrics.

FID (Heusel et al. 2017), the classifier score (Salimans et al. 2016) and precision/recall
embed images with a network trained on real data, as Inception is for natural images; for
digits genlab trains this small convnet (genlab/models/classifier.py) itself. It is a method
like any other, so `python run.py --config configs/classifier_mnist.py` trains, evaluates and
checkpoints it, and genlab/pretrained/digit_classifier.py exports and loads it back.

  train_step  means over the batch: loss (cross-entropy, with label smoothing if configured),
              accuracy (on the augmented batch, dropout on), grad_norm, learning_rate
  eval_step   sums over mask == 1:  accuracy (the number correct), nll (-log p(label|x), nats)

Training inputs are augmented inside the jitted step, from the step's key, so a resumed run
sees exactly the same batches: zoomed out by a factor in [augment.min_scale, 1], rotated by up
to augment.max_degrees and slanted by up to augment.max_shear, their strokes thinned or
thickened (augment.stroke, genlab/augment.py), then translated by up to augment.max_shift
pixels. Each is off by default but the translation. Weight decay
comes from the optimizer config (e.g. optax.adamw's `weight_decay`). There is no `sample`: a
classifier does not generate, and `--mode=sample` says so.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from genlab import augment
from genlab import methods
from genlab import optim
from genlab.config_checks import Range, count, fraction, natural
from genlab import viz
from genlab.errors import UserError, int_at_least, one_of
from genlab.models import classifier as classifier_models

# Ranges of this method's config keys (genlab/config_checks.py).
CONFIG_RANGES = {
    'model.stage_features': count(), 'model.convs_per_stage': count(), 'model.hidden_dim': count(),
    'model.dropout_rate': fraction(), 'loss.label_smoothing': fraction(),
    'augment.max_shift': natural(), 'viz.num_misclassified': count(),
    'augment.min_scale': Range(low=0, high=1, low_open=True, why='1: no zoom-out'),
    'augment.max_degrees': Range(low=0, high=180, why='0: no rotation'),
    'augment.max_shear': Range(low=0, high=1, why='0: no shear'),
    'augment.stroke': Range(low=0, high=0.5, why='0: strokes as drawn'),
}




def _fraction(value, key: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    raise UserError(f'config.{key}={value!r}: give a number in [0, 1).')
  return float(value)


# -- construction --------------------------------------------------------------------------
def build_model(config: ml_collections.ConfigDict, data_info) -> classifier_models.ConvClassifier:
  """The convnet of config.model for data_info's classes; UserError if there are no labels."""
  num_classes = int(data_info.num_classes)
  if num_classes < 2:
    raise UserError(
        f"Data set '{getattr(data_info, 'name', '?')}' has {num_classes} label classes: the "
        'classifier needs a labelled data set (e.g. --config.dataset=mnist5k).')
  model = methods.section(config, 'model')
  stages = tuple(model.get('stage_features', (32, 64)))
  if not stages:
    raise UserError('config.model.stage_features is empty: give at least one conv width, '
                    'e.g. (32, 64).')
  stages = tuple(int_at_least(f, 1, 'model.stage_features') for f in stages)
  height, width = (int(d) for d in data_info.image_shape[:2])
  if min(height, width) < 2 ** len(stages):
    raise UserError(
        f'config.model.stage_features={stages} halves {height}x{width} images {len(stages)} '
        'times: use fewer stages for images this small.')
  return classifier_models.ConvClassifier(
      num_classes=num_classes,
      stage_features=stages,
      convs_per_stage=int_at_least(model.get('convs_per_stage', 1), 1,
                                    'model.convs_per_stage'),
      hidden_dim=int_at_least(model.get('hidden_dim', 128), 1, 'model.hidden_dim'),
      dropout_rate=_fraction(model.get('dropout_rate', 0.5), 'model.dropout_rate'),
      dtype=jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'),
                              'model.dtype')))


def features_fn(model: classifier_models.ConvClassifier
                ) -> Callable[[train_state.TrainState, jax.Array], tuple[jax.Array, jax.Array]]:
  """f(state, images_NxHxWxC) -> (features_NxF, logits_NxK) in eval mode (no dropout)."""
  def f(state, x_NxHxWxC):
    return model.apply({'params': state.params}, x_NxHxWxC, False, method=model.features)
  return f


# -- augmentation and objective --------------------------------------------------------------
def random_translate(key: jax.Array, x_BxHxWxC: jax.Array, max_shift: int) -> jax.Array:
  """Shifts each image by (dy, dx) ~ U{-max_shift..max_shift}^2, filling with zeros.

  The classic MNIST augmentation (LeCun et al. 1998, Sec. III.C "distortions"; Simard et al.
  2003, Sec. 2): digits move within the frame but keep their shape. A pure function of `key`.
  """
  if max_shift == 0:
    return x_BxHxWxC
  shifts_Bx2 = jax.random.randint(key, (x_BxHxWxC.shape[0], 2), 0, 2 * max_shift + 1)
  return augment.translate_int(x_BxHxWxC, shifts_Bx2 - max_shift)


def random_zoom_out(key: jax.Array, x_BxHxWxC: jax.Array, min_scale: float) -> jax.Array:
  """Shrinks each image about its centre by s ~ U[min_scale, 1], filling with zeros (bilinear,
  antialiased): a digit drawn to fill the frame (scikit-learn's digits) and one drawn in a 20 px
  box inside 28 px (MNIST) then look alike to the classifier. min_scale 1 leaves the batch."""
  if min_scale >= 1.0:
    return x_BxHxWxC
  b, h, w, _ = x_BxHxWxC.shape
  scale_B = jax.random.uniform(key, (b,), minval=min_scale, maxval=1.0)

  size = jnp.array([h, w], jnp.float32)

  def zoom(image_HxWxC, scale):
    # out(x) = in((x - t) / s) with t = (1 - s) size / 2, read from the image framed by its own
    # size in zeros: scale_and_translate renormalises its taps at the edge, which would smear
    # the border pixels outward instead of leaving black.
    framed = jnp.pad(image_HxWxC, ((h, h), (w, w), (0, 0)))
    s = jnp.stack([scale, scale])
    offset = (1.0 - s) * size / 2.0 - s * size
    return jax.image.scale_and_translate(framed, image_HxWxC.shape, (0, 1), s, offset,
                                         'linear')

  return jax.vmap(zoom)(x_BxHxWxC, scale_B)


def cross_entropy(logits_BxK: jax.Array, labels_B: jax.Array,
                  label_smoothing: float = 0.0) -> jax.Array:
  """-sum_k q_k log softmax(logits)_k per example -> (B,).

  q is the one-hot label, or with smoothing e the mixture (1 - e) one_hot + e / K (Szegedy
  et al. 2016, "Rethinking the Inception Architecture", Sec. 7). e = 0 gives -log p(y|x).
  """
  num_classes = logits_BxK.shape[-1]
  targets_BxK = optax.smooth_labels(jax.nn.one_hot(labels_B, num_classes), label_smoothing)
  return optax.softmax_cross_entropy(logits_BxK, targets_BxK)


# -- the method ------------------------------------------------------------------------------
def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  model = build_model(config, data_info)
  image_shape = tuple(int(d) for d in data_info.image_shape)
  tx, schedule = optim.make_optimizer(config)
  label_smoothing = _fraction(methods.section(config, 'loss').get('label_smoothing', 0.0),
                              'loss.label_smoothing')
  max_shift = int_at_least(methods.section(config, 'augment').get('max_shift', 0), 0,
                            'augment.max_shift')
  augment_cfg = methods.section(config, 'augment')
  min_scale = float(augment_cfg.get('min_scale', 1.0))
  max_degrees = float(augment_cfg.get('max_degrees', 0.0))
  max_shear = float(augment_cfg.get('max_shear', 0.0))
  stroke = float(augment_cfg.get('stroke', 0.0))
  num_shown = int_at_least(methods.section(config, 'viz').get('num_misclassified', 32), 1,
                            'viz.num_misclassified')
  features = features_fn(model)

  def init(key):
    x = jnp.zeros((1, *image_shape), jnp.float32)
    params = model.init(key, x, False)['params']
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

  def train_step(state, batch, key):
    augment_key, dropout_key, zoom_key = jax.random.split(key, 3)
    # Keys of their own, so that configs without these draw what they always drew.
    affine_key, stroke_key = jax.random.split(jax.random.fold_in(key, 1))
    x_BxHxWxC = random_zoom_out(zoom_key, batch['image'], min_scale)
    x_BxHxWxC = augment.random_affine(x_BxHxWxC, affine_key, max_degrees=max_degrees,
                                      max_shear=max_shear, mode='constant')
    x_BxHxWxC = augment.random_stroke(x_BxHxWxC, stroke_key, stroke)
    x_BxHxWxC = random_translate(augment_key, x_BxHxWxC, max_shift)
    labels_B = batch['label']

    def loss_fn(params):
      logits_BxK = model.apply({'params': params}, x_BxHxWxC, True,
                               rngs={'dropout': dropout_key})
      return jnp.mean(cross_entropy(logits_BxK, labels_B, label_smoothing)), logits_BxK

    (loss, logits_BxK), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {'loss': loss,
               'accuracy': jnp.mean(jnp.argmax(logits_BxK, -1) == labels_B),
               'grad_norm': optax.global_norm(grads),
               'learning_rate': jnp.asarray(schedule(state.step), jnp.float32)}
    return state.apply_gradients(grads=grads), metrics

  def eval_step(state, batch, key):
    del key  # Deterministic: no augmentation or dropout at evaluation.
    x_BxHxWxC, labels_B = batch['image'], batch['label']
    mask_B = batch.get('mask', jnp.ones(labels_B.shape, jnp.float32))
    _, logits_BxK = features(state, x_BxHxWxC)
    per_example = {'accuracy': (jnp.argmax(logits_BxK, -1) == labels_B).astype(jnp.float32),
                   'nll': cross_entropy(logits_BxK, labels_B)}
    # where, not a product: a padded row must not turn the sum into nan.
    return {name: jnp.sum(jnp.where(mask_B > 0, v_B, 0.0)) for name, v_B in per_example.items()}

  logits_jit = jax.jit(lambda state, x: features(state, x)[1])

  def visualize(state, key, batch):
    """The first misclassified digits of the eval batch (none: no picture)."""
    del key
    images = np.asarray(batch['image'], np.float32)
    labels = np.asarray(batch['label'])
    if 'mask' in batch:
      real = np.asarray(batch['mask']) > 0
      images, labels = images[real], labels[real]
    if not len(images):
      return {}
    wrong = np.argmax(np.asarray(logits_jit(state, images)), -1) != labels
    shown = images[wrong][:num_shown]
    if not len(shown):
      return {}
    return {'misclassified': viz.image_grid(shown, ncols=math.ceil(math.sqrt(num_shown)))}

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step,
                        visualize=visualize)
