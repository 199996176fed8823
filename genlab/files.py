"""JSON files in a run directory, written atomically (a crash leaves the old file or the new
one, never half of one): config.json, results.json, vocab.json, a sweep's state."""
from __future__ import annotations

import json
import os
from typing import Any, Optional


def write_json(path: str, obj: Any) -> None:
  with open(path + '.tmp', 'w') as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def read_json(path: str) -> Optional[Any]:
  """The file's content, or None if it is missing or not JSON."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
