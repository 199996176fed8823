"""Files a run writes whole, written atomically (a crash, a full disk or a reader at the same
moment sees the old file or the new one, never half of one): config.json, results.json,
vocab.json, a sweep's state, --mode=sample's .npz and .txt."""
from __future__ import annotations

import contextlib
import json
import os
from typing import Any, Iterator, Optional

import numpy as np


@contextlib.contextmanager
def _replacing(path: str, suffix: str = '') -> Iterator[str]:
  """Yields a temporary path beside `path` (ending in `suffix`) that replaces `path` when the
  block succeeds, and is removed when it fails."""
  tmp = f'{path}.tmp-{os.getpid()}{suffix}'
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)


def write_json(path: str, obj: Any) -> None:
  with _replacing(path) as tmp, open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True)


def write_text(path: str, text: str) -> None:
  with _replacing(path) as tmp, open(tmp, 'w') as f:
    f.write(text)


def write_npz(path: str, **arrays) -> None:
  """np.savez_compressed(path, **arrays); `path` ends in .npz (numpy would add it)."""
  with _replacing(path, '.npz') as tmp:
    np.savez_compressed(tmp, **arrays)


def read_json(path: str) -> Optional[Any]:
  """The file's content, or None if it is missing or not JSON."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
