"""Class visualisation: the image a classifier scores highest for a class.

Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps" (ICLR workshop 2014), Sec. 2, Eq. 1:

  I* = argmax_I  S_c(I) - lambda ||I||_2^2

with S_c the class score *before* the softmax (the paper's choice: maximising the softmax
probability can be done by lowering the other classes' scores) and I the image relative to the
mean image; here the pixels are in [0, 1] and I = x - init.mean, the grey (or black, for
digits) the optimisation starts from. Regularisers from Yosinski, Clune, Nguyen, Fuchs & Lipson,
"Understanding Neural Networks Through Deep Visualization" (ICML DL workshop 2015), Sec. 3, and
Mordvintsev et al. 2015 ("Inceptionism"):
- jitter: each step rolls the image by a random shift (|dy|, |dx| <= config.jitter) before
  the network, so the score cannot rest on a fixed pixel grid (the objective draws from the
  step's key: L-BFGS is refused);
- random zoom (1 +- transform.scale) and rotation (+- transform.rotate degrees) of the jittered
  image, the transformation robustness of Olah, Mordvintsev & Schubert 2017 ("Feature
  Visualization", Distill): the score must survive small changes of scale and angle;
- Gaussian blur of the image every blur.every steps with std blur.sigma pixels (Yosinski's
  theta_b_every, theta_b_width), a projection after the optimiser's step;
- a total-variation penalty, loss.tv_weight sum (x_{i+1,j} - x_ij)^2 + (x_{i,j+1} - x_ij)^2
  (Mahendran & Vedaldi 2015, Eq. 5 with beta = 2);
- coarse to fine (scales.num > 1, each scales.factor larger): the image grows by plain
  upsampling, as in DeepDream's octaves, so large structures form first.
Per image n with class c_n the loss minimised is the sum over the batch of
  -(S_{c_n}(transform(jitter(x_n))) - l2_weight ||x_n - init.mean||^2 - tv_weight TV(x_n)).

One image per class, optimised as one batch (N, H, W, C). Networks: EfficientNet-Lite0 with
its ImageNet head (genlab/pretrained/efficientnet.py; classes by index or by name from
imagenet_labels()), or genlab's MNIST digit classifier (genlab/pretrained/digit_classifier.py,
trained on first use). The final evaluation reports the softmax probability the network gives
each class on its final image, prob_<class>, their mean, mean_prob, the class score
score_<class>, and top1_fraction, the fraction of images the network classifies as their
class.
"""
from __future__ import annotations

import dataclasses
import difflib
import math

import jax
import jax.numpy as jnp
import numpy as np

from genlab import augment
from genlab.config_checks import Range, count, natural, non_negative, positive
from genlab.errors import UserError, one_of
from genlab.methods import _image_optim, section

DATA = 'none'
CONFIG_RANGES = {
    'image_size': count(),
    'classes': natural(),
    'jitter': natural('0 turns the jitter off'),
    'scales.num': count(),
    'scales.factor': Range(low=1, why='each scale is this factor larger than the one before'),
    'loss.l2_weight': non_negative(),
    'loss.tv_weight': non_negative(),
    'blur.every': natural('0 never blurs'),
    'blur.sigma': positive(),
    'init.mean': Range(low=0, high=1, why='a pixel value'),
    'init.noise': non_negative(),
    'transform.scale': Range(low=0, high=1, high_open=True, why='a zoom of 1 +- this'),
    'transform.rotate': Range(low=0, high=180, why='degrees either way'),
}
NETWORKS = ('efficientnet_lite0', 'digit_classifier')


@dataclasses.dataclass(frozen=True)
class Classifier:
  """logits(x (N, H, W, C) in [0, 1]) -> (N, K); labels[k] names class k; image_shape is
  (H, W, C) when the network takes one size only (else None, with C = 3)."""
  logits: object
  labels: list
  channels: int
  image_shape: tuple | None


def classifier(config) -> Classifier:
  net = section(config, 'network')
  name = one_of(net.get('name', 'efficientnet_lite0'), NETWORKS, 'network.name')
  if name == 'efficientnet_lite0':
    from genlab.pretrained import efficientnet  # pylint: disable=g-import-not-at-top
    module, variables = efficientnet.EfficientNetLite0(), efficientnet.load_params()
    labels = efficientnet.imagenet_labels() if config.get('class_names', ()) else [
        str(k) for k in range(efficientnet.NUM_CLASSES)]
    return Classifier(logits=lambda x: module.apply(variables, x), labels=labels, channels=3,
                      image_shape=None)
  from genlab.pretrained import digit_classifier  # pylint: disable=g-import-not-at-top
  clf = digit_classifier.load(net.get('classifier_arg', '') or None,
                              workdir=net.get('classifier_workdir', '') or None,
                              data_dir=config.get('data_dir', None))
  return Classifier(logits=lambda x: clf.logits(clf.params, x),
                    labels=[str(k) for k in range(clf.num_classes)],
                    channels=clf.image_shape[-1], image_shape=clf.image_shape)


def class_indices(config, labels: list) -> list[int]:
  """config.classes (indices) then config.class_names (each matched against the comma-separated
  names of a label, case-insensitively: 'goldfish' is 1, 'goldfish, Carassius auratus')."""
  num = len(labels)
  out = []
  for c in config.get('classes', ()) or ():
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num:
      raise UserError(f'config.classes holds {c!r}: give class indices in [0, {num}).')
    out.append(int(c))
  names = config.get('class_names', ()) or ()
  names = (names,) if isinstance(names, str) else names
  synonyms = [[s.strip().lower() for s in label.split(',')] for label in labels]
  for name in names:
    key = str(name).strip().lower()
    hits = [k for k, syn in enumerate(synonyms) if key in syn or key == labels[k].lower()]
    if not hits:
      close = difflib.get_close_matches(key, [s for syn in synonyms for s in syn], n=5)
      raise UserError(f'config.class_names holds {name!r}, which names no class of the network'
                      f'{": did you mean " + ", ".join(map(repr, close)) if close else ""}? '
                      'Give a name from the network\'s labels (ImageNet: '
                      'efficientnet.imagenet_labels(); digits: \'0\'..\'9\') or an index in '
                      'config.classes.')
    out.append(hits[0])
  if not out:
    raise UserError('No class to visualise: give --config.classes="(130,)" (indices) or '
                    '--config.class_names="(\'flamingo\',)".')
  if len(set(out)) != len(out):
    raise UserError(f'config.classes / class_names name class(es) '
                    f'{sorted({c for c in out if out.count(c) > 1})} twice: give each class '
                    'once (one image is optimised per class).')
  return out


def gaussian_blur(x_NxHxWxC, sigma: float):
  """Separable Gaussian blur (std `sigma` pixels, radius ceil(3 sigma)), edges reflected."""
  radius = max(1, int(math.ceil(3 * sigma)))
  t = np.arange(-radius, radius + 1, dtype=np.float32)
  kernel = np.exp(-0.5 * (t / sigma) ** 2)
  kernel /= kernel.sum()
  h, w = x_NxHxWxC.shape[1:3]
  pad = [(0, 0), (min(radius, h - 1),) * 2, (min(radius, w - 1),) * 2, (0, 0)]
  y = jnp.pad(x_NxHxWxC, pad, mode='reflect')
  y = jnp.pad(y, [(0, 0), (radius - pad[1][0],) * 2, (radius - pad[2][0],) * 2, (0, 0)],
              mode='edge')  # an image narrower than the kernel
  y = sum(float(k) * y[:, i:i + h] for i, k in enumerate(kernel))
  return sum(float(k) * y[:, :, i:i + w] for i, k in enumerate(kernel))


def make(config, data_info):
  del data_info
  net = classifier(config)
  classes = class_indices(config, net.labels)
  n = len(classes)
  size = int(config.get('image_size', 224))
  if net.image_shape is not None and (size, size) != tuple(net.image_shape[:2]):
    raise UserError(f'config.image_size={size}, but the digit classifier takes '
                    f'{net.image_shape[0]}x{net.image_shape[1]} images: give '
                    f'--config.image_size={net.image_shape[0]}.')
  scales = section(config, 'scales')
  sizes = _image_optim.scale_sizes(size, size, int(scales.get('num', 1)),
                                   float(scales.get('factor', 2.0)))
  if net.image_shape is not None and len(sizes) > 1:
    raise UserError('The digit classifier takes one image size only: give '
                    '--config.scales.num=1.')
  loss_cfg = section(config, 'loss')
  l2_weight = float(loss_cfg.get('l2_weight', 0.0))
  tv_weight = float(loss_cfg.get('tv_weight', 0.0))
  init_cfg = section(config, 'init')
  mean = float(init_cfg.get('mean', 0.5))
  noise = float(init_cfg.get('noise', 0.0))
  max_shift = int(config.get('jitter', 0))
  transform = section(config, 'transform')
  max_scale = float(transform.get('scale', 0.0))
  max_degrees = float(transform.get('rotate', 0.0))
  stochastic = max_shift > 0 or max_scale > 0 or max_degrees > 0
  blur = section(config, 'blur')
  blur_every, blur_sigma = int(blur.get('every', 0)), float(blur.get('sigma', 1.0))
  target = jnp.asarray(classes, jnp.int32)
  rows = jnp.arange(n)

  def scores(x):
    """(S_c per image (N,), softmax probability of c per image (N,)) at x."""
    logits = net.logits(x)
    return logits[rows, target], jax.nn.softmax(logits, axis=-1)[rows, target]

  def objective(k, x, key):
    del k
    k_jitter, k_transform = jax.random.split(key)
    seen = augment.random_affine(_image_optim.jitter(x, k_jitter, max_shift), k_transform,
                                  max_scale=max_scale, max_degrees=max_degrees)
    score = net.logits(seen)[rows, target]
    l2 = jnp.sum((x - mean) ** 2)
    tv = _image_optim.total_variation(x)
    loss = -(jnp.sum(score) - l2_weight * l2 - tv_weight * tv)
    clean, prob = scores(x) if stochastic else (score, scores(x)[1])
    return loss, {'score': jnp.mean(clean), 'prob': jnp.mean(prob), 'l2': l2 / n, 'tv': tv / n}

  def init(key):
    x = mean + noise * jax.random.normal(key, (n, *sizes[0], net.channels), jnp.float32)
    return jnp.clip(x, 0.0, 1.0)

  def grow(k, x):
    return _image_optim.resize(x, sizes[k])

  def project(step, x):
    """Every blur.every steps, a Gaussian blur of the image (Yosinski et al. 2015)."""
    return jax.lax.cond((step + 1) % blur_every == 0,
                        lambda y: gaussian_blur(y, blur_sigma), lambda y: y, x)

  problem = _image_optim.Problem(sizes=sizes, objective=objective, init=init, grow=grow,
                                 stochastic=stochastic,
                                 project=project if blur_every > 0 else None)
  method = _image_optim.build(config, problem)

  result_fn = jax.jit(method.result)
  logits_fn = jax.jit(net.logits)

  def analyze(state, key, arrays):
    """The network on the final images (full size, clipped): prob_<class>, the softmax
    probability of each image's own class, their mean (mean_prob), score_<class>, the class
    score S_c (pre-softmax), and top1_fraction, the fraction whose top class is their own."""
    del key, arrays
    logits = np.asarray(jax.device_get(logits_fn(result_fn(state))), np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    own = probs[np.arange(n), classes]
    metrics = {f'prob_{c}': float(p) for c, p in zip(classes, own)}
    metrics.update({f'score_{c}': float(s)
                    for c, s in zip(classes, logits[np.arange(n), classes])})
    metrics['mean_prob'] = float(own.mean())
    metrics['top1_fraction'] = float(np.mean(probs.argmax(-1) == np.asarray(classes)))
    return metrics, {}

  return dataclasses.replace(method, analyze=analyze)
