"""Neural style transfer and texture synthesis by optimising pixels through a fixed VGG.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016)
and "Texture Synthesis Using Convolutional Neural Networks" (NeurIPS 2015); colour
preservation from Gatys, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in
Neural Style Transfer" (CVPR 2017). With F^l (N_l filters x M_l positions) the generated
image's activations at layer l, P^l the content image's and A^l the style image's Gram matrix:

  L_content = 1/2 sum_ij (F^l_ij - P^l_ij)^2                       (2016, Eq. 1)
  G^l_ij = sum_k F^l_ik F^l_jk                                      (2016, Eq. 3)
  E_l = 1 / (4 N_l^2 M_l^2) sum_ij (G^l_ij - A^l_ij)^2              (2016, Eq. 4)
  L_style = sum_l w_l E_l                                           (2016, Eq. 5)
  L_total = alpha L_content + beta L_style (+ a total-variation term)  (2016, Eq. 7)

The Grams here are divided by their own M (G / M), so E_l = 1/(4 N_l^2) sum (G/M - A/M_s)^2:
Eq. 4 exactly when the style image has the generated image's size, and still defined when it
has not. Several styles blend as sum_s v_s L_style(s) with sum_s v_s = 1. The layers are the
ReLU outputs (Caffe's in-place ReLU makes the paper's "conv4_2" the rectified response).
Texture synthesis is the same with no content image (alpha = 0, start from noise).

The features are VGG16's (torchvision's ImageNet weights, genlab/pretrained/vgg.py) unless
`network.name='vgg19'` with the user's Keras VGG19 (`network.weights=PATH`), the paper's.
The alpha/beta that balances the two terms depends on the network's feature scale: the
paper's 1e-3 .. 1e-4 is for Caffe's VGG19 on 0..255 inputs; the configs state their own.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from genlab.config_checks import count, non_negative, positive
from genlab.data import photos
from genlab.errors import UserError, one_of
from genlab.methods import _image_optim, section
from genlab.pretrained import vgg as vgg_lib

DATA = 'none'
CONFIG_RANGES = {
    'image_size': count(), 'style_scale': positive(), 'scales.num': count(),
    'scales.factor': positive(), 'loss.content_weight': non_negative(),
    'loss.style_weight': non_negative(), 'loss.tv_weight': non_negative(),
    'loss.style_layer_weights': non_negative(), 'optimizer.memory_size': count(),
}
INITS = ('content', 'noise')
COLORS = ('style', 'luminance', 'histogram')
NETWORKS = ('vgg16', 'vgg19')

# YIQ (NTSC), the luminance/chrominance split of Gatys et al. 2017, Sec. 3.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def network(config):
  """(module, params) of config.network: VGG16 (shipped weights) or the user's VGG19."""
  net = section(config, 'network')
  name = one_of(net.get('name', 'vgg16'), NETWORKS, 'network.name')
  pooling = one_of(net.get('pooling', 'avg'), vgg_lib.POOLINGS, 'network.pooling')
  if name == 'vgg16':
    return vgg_lib.VGG(depth=16, pooling=pooling), vgg_lib.load_vgg16()
  weights = net.get('weights', '')
  if not weights:
    raise UserError('config.network.name=vgg19 needs your VGG19 weights: give '
                    '--config.network.weights=PATH (Keras vgg19_weights_tf_dim_ordering_tf_'
                    'kernels_notop.h5, or an .npz in its layout), or use vgg16.')
  return vgg_lib.vgg19_caffe(pooling), vgg_lib.load_vgg19(weights)


def gram(features_NxHxWxC):
  """G / M for each image: (N, C, C), the Gram matrix of Eq. 3 over its M = H W positions."""
  n, h, w, c = features_NxHxWxC.shape
  f = features_NxHxWxC.reshape(n, h * w, c)
  return jnp.einsum('nmi,nmj->nij', f, f) / (h * w)


def luminance(rgb):
  return rgb @ _RGB_TO_YIQ[0]


def match_luminance(style_lum, content_lum):
  """Gatys et al. 2017, Eq. 1: L_s' = sigma_c / sigma_s (L_s - mu_s) + mu_c."""
  return (content_lum.std() / max(style_lum.std(), 1e-6)) * (style_lum - style_lum.mean()) + \
      content_lum.mean()


def match_colors(style_HxWx3, content_HxWx3):
  """Gatys et al. 2017, Sec. 3.2: the style's pixels mapped linearly, p' = A (p - mu_s) + mu_c
  with A = Sigma_c^1/2 Sigma_s^-1/2, so their mean and covariance are the content's."""
  def stats(x):
    p = x.reshape(-1, 3).astype(np.float64)
    return p.mean(0), np.cov(p, rowvar=False) + 1e-5 * np.eye(3)

  def sqrtm(m, power):
    values, vectors = np.linalg.eigh(m)
    return (vectors * np.maximum(values, 1e-12) ** power) @ vectors.T

  mu_s, cov_s = stats(style_HxWx3)
  mu_c, cov_c = stats(content_HxWx3)
  a = sqrtm(cov_c, 0.5) @ sqrtm(cov_s, -0.5)
  out = (style_HxWx3.reshape(-1, 3) - mu_s) @ a.T + mu_c
  return np.clip(out, 0, 1).reshape(style_HxWx3.shape).astype(np.float32)


def _images(config):
  """(content (H, W, 3) or None, [style (h, w, 3)], style blend weights, output (H, W))."""
  size = int(config.image_size)
  content_spec = config.get('content', '')
  content = photos.load(content_spec, max_side=size) if content_spec else None
  specs = config.get('style', ())
  specs = (specs,) if isinstance(specs, str) else tuple(specs)
  if not specs:
    raise UserError('No style image: give --config.style=PATH or a named photo such as '
                    f'{photos.named_examples()} (several as a tuple, e.g. "(\'a\', \'b\')").')
  style_side = max(1, round(size * float(config.get('style_scale', 1.0))))
  styles = [photos.load(s, max_side=style_side) for s in specs]
  weights = np.asarray(config.get('style_weights', ()) or [1.0] * len(styles), np.float64)
  if len(weights) != len(styles) or weights.sum() <= 0 or np.any(weights < 0):
    raise UserError(f'config.style_weights={tuple(weights)} must give one non-negative weight '
                    f'per style image ({len(styles)}), not all zero.')
  shape = content.shape[:2] if content is not None else (size, size)
  return content, styles, weights / weights.sum(), shape


def make(config, data_info):
  del data_info
  loss_cfg = section(config, 'loss')
  content, styles, style_weights, (height, width) = _images(config)
  color = one_of(config.get('color', 'style'), COLORS, 'color')
  init_kind = one_of(config.get('init', 'content' if content is not None else 'noise'), INITS,
                     'init')
  if content is None and (init_kind == 'content' or color != 'style'):
    raise UserError(f'config.init={init_kind!r} / config.color={color!r} need a content image: '
                    'give --config.content, or use init=noise and color=style for a texture.')
  if content is not None and color == 'histogram':
    styles = [match_colors(s, content) for s in styles]
  if content is not None and color == 'luminance':  # optimise one channel: the luminance
    content_lum = luminance(content)
    styles = [match_luminance(luminance(s), content_lum)[..., None] for s in styles]
    target = content_lum[..., None]
  else:
    target = content
  channels = 1 if color == 'luminance' else 3

  net, params = network(config)
  content_layer = loss_cfg.get('content_layer', 'relu4_2')
  style_layers = tuple(loss_cfg.get('style_layers', ('relu1_1', 'relu2_1', 'relu3_1',
                                                     'relu4_1', 'relu5_1')))
  layer_weights = np.asarray(loss_cfg.get('style_layer_weights', ())
                             or [1.0 / len(style_layers)] * len(style_layers), np.float32)
  if len(layer_weights) != len(style_layers):
    raise UserError(f'config.loss.style_layer_weights has {len(layer_weights)} weights for '
                    f'{len(style_layers)} style layers {style_layers}: give one per layer.')
  alpha = float(loss_cfg.get('content_weight', 1.0)) if content is not None else 0.0
  beta = float(loss_cfg.get('style_weight', 1e3))
  tv_weight = float(loss_cfg.get('tv_weight', 0.0))
  layers = tuple(dict.fromkeys(style_layers + ((content_layer,) if alpha else ())))

  def apply(x):  # a luminance image enters the RGB network as grey
    return net.apply({'params': params}, jnp.broadcast_to(x, (*x.shape[:-1], 3)), layers=layers)

  features = jax.jit(apply)
  features(jnp.zeros((1, 32, 32, channels)))  # an unknown layer fails here, listing the valid

  scales = section(config, 'scales')
  sizes = _image_optim.scale_sizes(height, width, int(scales.get('num', 1)),
                                   float(scales.get('factor', 2.0)))
  full = sizes[-1]

  def at_scale(image, k):
    """`image` at scale k: the content at that scale's size, a style image by the same factor
    (keeping its own aspect ratio)."""
    f = sizes[k][0] / full[0]
    hw = sizes[k] if image is target else (max(1, round(image.shape[0] * f)),
                                           max(1, round(image.shape[1] * f)))
    return _image_optim.resize(jnp.asarray(image)[None], hw)

  targets = []  # per scale: (content features or None, [style Grams per style])
  for k in range(len(sizes)):
    p = features(at_scale(target, k))[content_layer] if alpha else None
    grams = [{l: gram(v) for l, v in features(at_scale(s, k)).items() if l in style_layers}
             for s in styles]
    targets.append((p, grams))

  def objective(k, x, key):
    del key
    p, style_grams = targets[k]
    f = apply(x)
    content_loss = 0.5 * jnp.sum((f[content_layer] - p) ** 2) if alpha else jnp.float32(0)
    style_loss = jnp.float32(0)
    for v, grams in zip(style_weights, style_grams):
      for w, l in zip(layer_weights, style_layers):
        n_l = f[l].shape[-1]
        style_loss += v * w * jnp.sum((gram(f[l]) - grams[l]) ** 2) / (4.0 * n_l ** 2)
    tv = _image_optim.total_variation(x)
    loss = alpha * content_loss + beta * style_loss + tv_weight * tv
    return loss, {'content_loss': content_loss, 'style_loss': style_loss, 'tv_loss': tv}

  def init(key):
    if init_kind == 'content':
      return at_scale(target, 0)
    return jax.random.uniform(key, (1, *sizes[0], channels), jnp.float32)

  def grow(k, x):
    return _image_optim.resize(x, sizes[k])

  show = None
  if color == 'luminance':
    iq = jnp.asarray(content @ _RGB_TO_YIQ[1:].T)[None]  # the content's chrominance

    def show(y):
      return jnp.concatenate([y, iq], -1) @ _YIQ_TO_RGB.T

  problem = _image_optim.Problem(sizes=sizes, objective=objective, init=init, grow=grow,
                                 show=show)
  return _image_optim.build(config, problem)
