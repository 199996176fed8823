"""DeepDream: gradient ascent on the activations of chosen layers, over octaves of a photo.

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks" (Google Research
blog, 2015), and the reference implementation google/deepdream dream.ipynb (`make_step`,
`deepdream`). With a_l(x) the activation of layer l (channels x positions) for image x, the
image ascends

  F(x) = sum_l w_l mean(a_l(x)^2)      ('mean_square'; the notebook's objective_L2, whose
                                         gradient is the activation itself, up to scale)
  F(x) = sum_l w_l mean(a_l(x))        ('mean': the mean activation)

and the loss minimised is -F. Each step of the notebook is, here:
- jitter: the image is rolled by a random shift (dy, dx), |dy|, |dx| <= config.jitter pixels,
  before the network (np.roll in make_step); the gradient reaches the unrolled pixels, which is
  the notebook's roll, step, roll back. The objective then draws from the step's key.
- a normalised gradient step, x <- x + lr g / mean|g| (optimizer 'normalized_sgd',
  genlab/methods/_image_optim.py; lr in pixels on [0, 1] images: the notebook's 1.5 on 0..255
  is 0.006), then clipping to [0, 1].
- octaves: the photo at num sizes, each `scale` times the one before (base_0 smallest); octave
  k starts from its base plus the detail the dream added at octave k-1, upscaled:
    x_k(start) = base_k + resize(x_{k-1}(end) - base_{k-1}, size_k)     (detail reinjection)

Networks: torchvision's VGG16 (genlab/pretrained/vgg.py; the original used GoogLeNet, whose
weights genlab does not ship) or EfficientNet-Lite0 (genlab/pretrained/efficientnet.py).

Tiling (large images): an octave larger than config.tile_size is evaluated as overlapping
windows of tile_size pixels, one after the other (lax.map of a rematerialised window, so the
memory is one window's activations, not the image's). Each window owns a core of the feature
positions and is widened on every side by a halo of at least the layers' receptive radius,
clamped inside the image, so that every owned activation sees exactly the pixels (and, at the
image's own edges, the zero padding) it sees in the whole image; the cores partition the
feature maps. The tiled F is then the untiled F, and so are its gradients (up to float
summation order). For the grids to line up, every octave's sides are multiples of the deepest
layer's stride (the photo is resized by at most half a stride to make it so). The price is the
halo: the windows overlap, and deep layers need large tiles (tile_size >= 2 halo + stride;
the error says how large).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from genlab import viz
from genlab.config_checks import Range, count, natural, non_negative
from genlab.data import photos
from genlab.errors import UserError, one_of
from genlab.methods import _image_optim, section
from genlab.pretrained import efficientnet as effnet_lib
from genlab.pretrained import vgg as vgg_lib

DATA = 'none'
CONFIG_RANGES = {
    'image_size': count(),
    'octaves.num': count(),
    'octaves.scale': Range(low=1, why='each octave is this factor larger than the one before'),
    'jitter': natural('0 turns the jitter off'),
    'tile_size': natural('0 never tiles'),
    'layer_weights': non_negative(),
}
NETWORKS = ('vgg16', 'efficientnet_lite0')
LOSSES = ('mean_square', 'mean')


# -- the networks, with the geometry tiling needs ----------------------------------------------
@dataclasses.dataclass(frozen=True)
class Network:
  """features(x) -> {layer: activation (N, h, w, C), or (N, C) for a global layer}; per layer
  its stride (input pixels per feature position; None: global) and receptive radius (input
  pixels a position reaches beyond its own stride cell, an upper bound)."""
  features: Callable[[jax.Array], dict]
  stride: dict
  radius: dict


def _vgg_geometry(depth: int = 16):
  """{layer: (stride, radius)}: a 3x3 conv at stride j reaches j further; a 2x2 pool doubles
  the stride and (its cell covering the two cells it pools) reaches no further."""
  out, j, r = {}, 1, 0
  for name in vgg_lib.vgg_layer_names(depth):
    if name.startswith('conv'):
      r += j
    elif name.startswith('pool'):
      j *= 2
    out[name] = (j, r)
  return out


def _efficientnet_geometry():
  """{layer: (stride, radius)}. A k x k conv of stride s at stride j reaches (k // 2) j, and TF's
  'SAME' padding of a stride-2 conv shifts its window by up to (s - 1) j more on one side."""
  out, j, r = {}, 1, 0

  def conv(k, s):
    nonlocal j, r
    r += (k // 2) * j + (s - 1) * j
    j *= s

  conv(3, 2)
  out['stem'] = (j, r)
  specs = effnet_lib._block_specs()  # pylint: disable=protected-access
  for name, (kernel, stride, _, _, _) in zip(effnet_lib.BLOCKS, specs):
    conv(kernel, stride)
    out[name] = (j, r)
  out['head'] = (j, r)
  out['pool'] = out['logits'] = (None, None)
  return out


def network(config, layers: tuple[str, ...]) -> Network:
  """config.network ('vgg16' with network.pooling, or 'efficientnet_lite0') with `layers`
  checked: an unknown one is the network's own UserError, listing the valid names."""
  net = section(config, 'network')
  name = one_of(net.get('name', 'vgg16'), NETWORKS, 'network.name')
  if not layers:
    raise UserError('config.layers is empty: give the layers to dream on, e.g. '
                    '"(\'relu4_3\',)" for vgg16 or "(\'block11\',)" for efficientnet_lite0.')
  if name == 'vgg16':
    pooling = one_of(net.get('pooling', 'max'), vgg_lib.POOLINGS, 'network.pooling')
    module, params = vgg_lib.VGG(depth=16, pooling=pooling), vgg_lib.load_vgg16()
    geometry = _vgg_geometry(16)

    def features(x):
      return module.apply({'params': params}, x, layers=layers)
  else:
    module, variables = effnet_lib.EfficientNetLite0(), effnet_lib.load_params()
    geometry = _efficientnet_geometry()

    def features(x):
      return module.apply(variables, x, features=layers)
  # Traced only: an unknown layer raises the network's UserError here, listing the valid ones.
  jax.eval_shape(features, jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))
  return Network(features=features, stride={l: geometry[l][0] for l in layers},
                 radius={l: geometry[l][1] for l in layers})


# -- the objective, whole or tiled --------------------------------------------------------------
def layer_value(activation, kind: str):
  """The summand of F for one layer, summed (not averaged) over what `activation` holds."""
  return jnp.sum(activation ** 2) if kind == 'mean_square' else jnp.sum(activation)


def feature_count(shape_hw, stride: Optional[int], channels: int, n: int) -> int:
  """How many values a layer's activation holds for n images of shape_hw (its mean's
  denominator). Sides are multiples of the stride, so the feature map is exactly side/stride."""
  if stride is None:
    return n * channels
  return n * (shape_hw[0] // stride) * (shape_hw[1] // stride) * channels


def axis_windows(length: int, tile: int, halo: int) -> list[tuple[int, int, int]]:
  """[(window start, owned start, owned end)] along one side of `length` pixels: windows of
  `tile` pixels whose owned cores [i c, (i+1) c) (c = tile - 2 halo) partition the side, each
  window starting `halo` before its core, clamped inside [0, length]. One window when the side
  fits in a tile."""
  if length <= tile:
    return [(0, 0, length)]
  core = tile - 2 * halo
  out = []
  for i in range(math.ceil(length / core)):
    own0, own1 = i * core, min((i + 1) * core, length)
    out.append((min(max(own0 - halo, 0), length - tile), own0, own1))
  return out


@dataclasses.dataclass(frozen=True)
class Dream:
  """F and its pieces for one network, layer set and loss kind (see the module docstring)."""
  net: Network
  layers: tuple[str, ...]
  weights: tuple[float, ...]
  kind: str
  tile_size: int       # 0: never tile
  channels: dict       # per layer

  @property
  def step(self) -> int:
    """The deepest layer's stride: every octave side is a multiple of it (1 for global
    layers only)."""
    return max([s for s in self.net.stride.values() if s is not None] or [1])

  @property
  def halo(self) -> int:
    """The tiles' overlap on each side: the largest receptive radius, up to a stride multiple."""
    r = max(self.net.radius[l] for l in self.layers)
    return int(math.ceil(r / self.step) * self.step)

  def tiled(self, hw) -> bool:
    return self.tile_size > 0 and max(hw) > self.tile_size

  def check_tiling(self, hw) -> None:
    """UserError when an octave of size hw must be tiled but cannot be."""
    if not self.tiled(hw):
      return
    global_layers = [l for l in self.layers if self.net.stride[l] is None]
    if global_layers:
      raise UserError(f'config.layers {global_layers} pool over the whole image, so an image of '
                      f'{hw[0]}x{hw[1]} cannot be split into tiles of config.tile_size='
                      f'{self.tile_size}: give --config.tile_size=0 (no tiling) or spatial '
                      'layers.')
    tile = self.tile_size // self.step * self.step
    least = 2 * self.halo + self.step
    if tile < least:
      raise UserError(f'config.tile_size={self.tile_size} is too small for layers '
                      f'{list(self.layers)}: their receptive radius needs a halo of '
                      f'{self.halo} px on each side, so give tile_size >= {least} (or 0 to '
                      'never tile).')

  def totals(self, x) -> jax.Array:
    """(num layers,) sums of layer_value over the whole image x (N, H, W, 3)."""
    f = self.net.features(x)
    return jnp.stack([layer_value(f[l], self.kind) for l in self.layers])

  def tiled_totals(self, x) -> jax.Array:
    """The same sums, window by window (module docstring, Tiling)."""
    h, w = x.shape[1:3]
    tile = self.tile_size // self.step * self.step
    rows, cols = axis_windows(h, tile, self.halo), axis_windows(w, tile, self.halo)
    th, tw = min(tile, h), min(tile, w)
    windows = jnp.stack([x[:, r0:r0 + th, c0:c0 + tw] for r0, _, _ in rows for c0, _, _ in cols])
    owned = jnp.asarray([(a0 - r0, a1 - r0, b0 - c0, b1 - c0)
                         for r0, a0, a1 in rows for c0, b0, b1 in cols], jnp.int32)

    @jax.checkpoint  # the backward pass recomputes each window's activations
    def window(args):
      xw, (y0, y1, x0, x1) = args
      f = self.net.features(xw)
      sums = []
      for l in self.layers:
        s = self.net.stride[l]
        a = f[l]
        qy = jnp.arange(a.shape[1])[:, None] * s
        qx = jnp.arange(a.shape[2])[None, :] * s
        mask = (qy >= y0) & (qy < y1) & (qx >= x0) & (qx < x1)
        sums.append(jnp.sum(jnp.where(mask[None, :, :, None],
                                      a ** 2 if self.kind == 'mean_square' else a, 0.0)))
      return jnp.stack(sums)

    return jnp.sum(jax.lax.map(window, (windows, owned)), axis=0)

  def value(self, x, tile: Optional[bool] = None):
    """(F(x), {layer: its mean}) for images x (N, H, W, 3); tiled when the image is larger than
    tile_size (or as `tile` says)."""
    hw = x.shape[1:3]
    tile = self.tiled(hw) if tile is None else tile
    sums = self.tiled_totals(x) if tile else self.totals(x)
    means = {l: sums[i] / feature_count(hw, self.net.stride[l], self.channels[l], x.shape[0])
             for i, l in enumerate(self.layers)}
    return sum(w * means[l] for w, l in zip(self.weights, self.layers)), means


# -- the method ----------------------------------------------------------------------------------
def _dream(config) -> Dream:
  layers = config.get('layers', ())
  layers = (layers,) if isinstance(layers, str) else tuple(layers)
  net = network(config, layers)
  weights = tuple(float(w) for w in (config.get('layer_weights', ()) or [1.0] * len(layers)))
  if len(weights) != len(layers):
    raise UserError(f'config.layer_weights has {len(weights)} weights for {len(layers)} layers '
                    f'{layers}: give one per layer (or () for 1 each).')
  kind = one_of(section(config, 'loss').get('kind', 'mean_square'), LOSSES, 'loss.kind')
  shapes = jax.eval_shape(net.features, jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32))
  channels = {l: int(shapes[l].shape[-1]) for l in layers}
  return Dream(net=net, layers=layers, weights=weights, kind=kind,
               tile_size=int(config.get('tile_size', 0)), channels=channels)


def octave_sizes(height: int, width: int, num: int, scale: float, step: int):
  """scale_sizes's octaves (base_0 smallest), each side rounded to a multiple of `step`."""
  def snap(v):
    return max(step, int(round(v / step)) * step)
  return [(snap(h), snap(w)) for h, w in _image_optim.scale_sizes(height, width, num, scale)]


def make(config, data_info):
  del data_info
  dream = _dream(config)
  photo = photos.load(config.get('image', 'skimage:chelsea'),
                      max_side=int(config.get('image_size', 256)))
  octaves = section(config, 'octaves')
  sizes = octave_sizes(*photo.shape[:2], int(octaves.get('num', 1)),
                       float(octaves.get('scale', 1.4)), dream.step)
  for hw in sizes:
    dream.check_tiling(hw)
  # base_k: the photo at octave k's size (antialiased when shrinking).
  bases = [np.asarray(_image_optim.resize(jnp.asarray(photo)[None], hw)) for hw in sizes]
  max_shift = int(config.get('jitter', 0))

  def objective(k, x, key):
    value, means = dream.value(_image_optim.jitter(x, key, max_shift))
    clean = value if max_shift <= 0 else dream.value(x)[0]  # eval metrics: no jitter
    metrics = {'objective': clean}
    if len(dream.layers) > 1:
      metrics.update({f'objective_{l}': m for l, m in means.items()})
    return -value, metrics

  def init(key):
    del key
    return jnp.asarray(bases[0])

  def grow(k, x):
    """Detail reinjection: base_k + the upscaled detail of octave k-1, clipped to [0, 1]."""
    detail = x - bases[k - 1]
    return jnp.clip(bases[k] + _image_optim.resize(detail, sizes[k]), 0.0, 1.0)

  problem = _image_optim.Problem(sizes=sizes, objective=objective, init=init, grow=grow,
                                 stochastic=max_shift > 0)
  ends = _image_optim.scale_ends(int(config.num_train_steps), len(sizes))
  value_fn = jax.jit(lambda x: dream.value(x)[0])  # compiled once per octave size

  def analyze(state, key, arrays):
    """F at the start and end of every octave that has started (no jitter), and their ratio
    gain_octave_k; the pictures: every octave's image, side by side at full size."""
    del key, arrays
    step = int(jax.device_get(state.step))
    images = [np.asarray(jax.device_get(x)) for x in state.images]
    metrics, shown = {}, []
    for k in range(len(sizes)):
      if k > 0 and step < ends[k - 1]:
        break  # not started
      start = bases[0] if k == 0 else np.asarray(grow(k, jnp.asarray(images[k - 1])))
      f0, f1 = (float(value_fn(jnp.asarray(v))) for v in (start, images[k]))
      metrics.update({f'objective_start_octave_{k}': f0, f'objective_end_octave_{k}': f1,
                      f'gain_octave_{k}': f1 / f0 if f0 else float('nan')})
      shown.append(np.asarray(_image_optim.resize(jnp.asarray(images[k]), sizes[-1]))[0])
    pictures = {'octaves': viz.image_grid(np.clip(np.stack(shown), 0, 1), ncols=len(shown))}
    return metrics, pictures

  return _image_optim.build(config, problem, analyze=analyze)
