"""The run directory as a place on disk: can it be written, and who is writing it.

One writer per workdir: a training run or an evaluation holds `WORKDIR/run.lock` (an
exclusive `flock`, which the kernel releases on every exit, `kill -9` included, so a lock left
by a crash is stale and simply taken over). The file names its holder, for the message that
refuses a second writer. `--mode=sample` only reads checkpoints and writes its --output, so it
needs no lock and may run beside training.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Iterator

from genlab.errors import UserError

LOCK_FILE = 'run.lock'


def check_writable(workdir: str) -> None:
  """UserError unless `workdir` is (or can be made as) a writable directory. Creates nothing."""
  path = os.path.abspath(workdir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f'--workdir {workdir} is a file, not a directory: give a directory '
                    '(new or holding a run).')
  existing = path
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise UserError(f'--workdir {workdir} cannot be made: {existing} is a file. Give a path '
                    'under a directory.')
  if not os.access(existing, os.W_OK | os.X_OK) or _read_only_mount(existing):
    raise UserError(f'--workdir {workdir} is not writable ({existing} is read-only): give a '
                    'directory you can write, e.g. under runs/.')


def _read_only_mount(path: str) -> bool:
  try:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
  except OSError:
    return False


def check_output(output: str) -> None:
  """--output of --mode=sample: a .npz file in a directory that exists and is writable."""
  if not output.endswith('.npz'):
    raise UserError(f'--output={output}: give a file name ending in .npz (numpy would add the '
                    'suffix itself).')
  if os.path.isdir(output):
    raise UserError(f'--output={output} is a directory: give a file name ending in .npz.')
  folder = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(folder):
    raise UserError(f'--output={output}: the directory {folder} does not exist; create it '
                    'first (mkdir -p) or choose another path.')
  if not os.access(folder, os.W_OK | os.X_OK) or _read_only_mount(folder):
    raise UserError(f'--output={output}: {folder} is not writable; choose another path.')


def _holder(path: str) -> str:
  try:
    with open(path) as f:
      h = json.load(f)
    return (f"process {h['pid']} on {h['host']} ({h['mode']}, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(h['started']))})")
  except (OSError, ValueError, KeyError, TypeError):
    return 'another process'


@contextlib.contextmanager
def lock(workdir: str, mode: str) -> Iterator[None]:
  """Holds WORKDIR/run.lock for the block (making the workdir if needed); UserError naming
  the holder if another process holds it. Removed again when the block ends."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      os.close(fd)
      if e.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise UserError(f'{workdir} is in use by {_holder(path)}: one run writes a workdir at a '
                      'time. Wait for it to end (or stop it), or use another --workdir; '
                      '--mode=sample can read it meanwhile.') from None
    # The previous holder may have removed the file between our open and our lock.
    try:
      same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      same = False
    if same:
      break
    os.close(fd)
  try:
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(), 'mode': mode,
                             'started': time.time(), 'argv': sys.argv}).encode())
    yield
  finally:
    with contextlib.suppress(OSError):
      os.unlink(path)
    os.close(fd)
