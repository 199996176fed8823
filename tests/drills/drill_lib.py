"""What the drills share: real `run.py` processes, waiting for them to reach a point, the state
they leave, and the table of figures printed at the end of the session (tests/conftest.py).

Every drill damages a real run (a signal, a kill, a full disk, bytes cut from a file) and checks
what a researcher relies on afterwards: the exit code and its one line, the checkpoints, and
that the resumed run ends bit-identical to one that was never disturbed.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np

from conftest import ROOT

FIGURES: list[tuple[str, str]] = []  # (drill, figure), printed by tests/conftest.py


def report(drill: str, figure: str) -> None:
  FIGURES.append((drill, figure))
  print(f'drill {drill}: {figure}')


# -- configs -------------------------------------------------------------------------------------
def config_arg(name: str) -> str:
  return os.path.join(ROOT, 'configs', f'{name}.py') + ':smoke'


def config(name: str, overrides: dict):
  """configs/<name>.py:smoke with `overrides` ({'dotted.key': value}) applied."""
  c = importlib.import_module(f'configs.{name}').get_config('smoke')
  c.update_from_flattened_dict(overrides)
  return c


def flags(overrides: dict) -> list[str]:
  def text(v):
    return f'({",".join(map(str, v))}{"," if len(v) == 1 else ""})' if isinstance(v, tuple) \
        else str(v)
  return [f'--config.{k}={text(v)}' for k, v in overrides.items()]


# -- processes -----------------------------------------------------------------------------------
def env(**extra) -> dict:
  return dict(os.environ, JAX_PLATFORMS='cpu', **extra)


def start(name: str, workdir: str, overrides: dict, *args, extra_env=None) -> subprocess.Popen:
  """`python run.py --config configs/<name>.py:smoke --workdir W --config.K=V ... ARGS`."""
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'run.py'), '--config', config_arg(name),
       '--workdir', workdir, *flags(overrides), *args],
      cwd=ROOT, env=env(**(extra_env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True)


def run(name: str, workdir: str, overrides: dict, *args, timeout=600,
        extra_env=None) -> subprocess.CompletedProcess:
  proc = start(name, workdir, overrides, *args, extra_env=extra_env)
  out, err = proc.communicate(timeout=timeout)
  return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_until(condition, proc: subprocess.Popen | None, timeout: float, what: str,
               poll: float = 0.005) -> float:
  """Polls `condition()` until it holds; returns the time it took. Fails if `proc` ends first."""
  start_time = time.time()
  while not condition():
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f'the run ended before {what}:\n{proc.communicate()[1][-3000:]}')
    if time.time() - start_time > timeout:
      raise AssertionError(f'no {what} after {timeout} s')
    time.sleep(poll)
  return time.time() - start_time


def lines(text: str) -> list[str]:
  """stderr without the progress bar's redraws."""
  return [l for l in text.replace('\r', '\n').splitlines()
          if l.strip() and not l.startswith('train:')]


def error_lines(proc) -> list[str]:
  return [l for l in lines(proc.stderr) if l.startswith('genlab: error:')]


# -- what a run leaves ---------------------------------------------------------------------------
def logged_steps(workdir: str, split: str = 'train') -> list[int]:
  """Steps of the complete rows of metrics.jsonl for `split` (a row being written is skipped)."""
  path = os.path.join(workdir, 'metrics.jsonl')
  steps = []
  try:
    with open(path) as f:
      for row in f:
        try:
          record = json.loads(row)
        except ValueError:
          continue
        if record['split'] == split:
          steps.append(record['step'])
  except FileNotFoundError:
    pass
  return steps


def metric_rows(workdir: str, split: str | None = 'train') -> list[dict]:
  """The rows of `split` (None: all), without the wall-clock figure (steps/s) that differs
  between runs."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(l) for l in f]
  return [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows
          if split is None or r['split'] == split]


def checkpoint_steps(workdir: str) -> list[int]:
  """Steps with a complete (committed) checkpoint."""
  folder = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(folder):
    return []
  return sorted(int(s) for s in os.listdir(folder)
                if s.isdigit() and os.path.exists(os.path.join(folder, s, 'commit_success.txt')))


def checksums(path: str) -> dict[str, str]:
  """sha256 of every file under `path` (hidden ones too), by relative path; {} if none."""
  out = {}
  for folder, _, names in os.walk(path):
    for name in names:
      file = os.path.join(folder, name)
      with open(file, 'rb') as f:
        out[os.path.relpath(file, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


def final_state(name: str, overrides: dict, workdir: str):
  """The train state of the latest checkpoint in `workdir`, as numpy."""
  from genlab import train  # pylint: disable=g-import-not-at-top
  _, state, _ = train.restore(config(name, overrides), workdir)
  def host(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.asarray(x)
  return jax.tree.map(host, state)


def identical(a, b) -> bool:
  """Bit-identical pytrees (every leaf's bytes; NaN equals NaN)."""
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) and all(
      x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes()
      for x, y in zip(map(np.asarray, la), map(np.asarray, lb)))


def max_difference(a, b) -> float:
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
             if np.issubdtype(np.asarray(x).dtype, np.floating))


def start_processes(name: str, workdir: str, overrides: dict, count: int, *args,
                    devices: int = 8, extra_env=None) -> list[subprocess.Popen]:
  """A `count`-process run on 127.0.0.1, `devices` CPU devices in all (DESIGN.md)."""
  import portpicker  # pylint: disable=g-import-not-at-top
  port = portpicker.pick_unused_port()
  return [start(name, workdir, overrides, *args, extra_env={
      'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices // count}',
      'GENLAB_COORDINATOR': f'127.0.0.1:{port}', 'GENLAB_NUM_PROCESSES': str(count),
      'GENLAB_PROCESS_ID': str(i), **(extra_env or {})}) for i in range(count)]


def finish(procs: list[subprocess.Popen], timeout: float = 600) -> list[tuple[int, str]]:
  """(exit code, stderr) of each process, once all have ended."""
  ended = []
  for p in procs:
    _, err = p.communicate(timeout=timeout)
    ended.append((p.returncode, err))
  return ended
