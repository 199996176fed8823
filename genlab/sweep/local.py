"""The local backend: trials as processes on this machine, `parallel` at a time.

The machine's CPUs are divided among the parallel slots (each trial pinned to its share, so
that N trials on a many-core machine do not each start a thread per core); with `gpus_per_trial`, each slot owns that many
of the visible GPUs through CUDA_VISIBLE_DEVICES. Ctrl-C or SIGTERM stops every running
trial with SIGTERM (each saves a checkpoint and exits), then the sweep; re-running the same
command resumes.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

from genlab.errors import UserError
from genlab.sweep import trials as trials_lib


def visible_gpus() -> list[str]:
  """The GPU ids this process may use: CUDA_VISIBLE_DEVICES, else what nvidia-smi lists."""
  env = os.environ.get('CUDA_VISIBLE_DEVICES')
  if env is not None:
    return [g for g in env.split(',') if g.strip() and g.strip() != '-1']
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=20)
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i, l in enumerate(out.stdout.splitlines()) if l.startswith('GPU ')]


def make_slots(parallel: int, gpus_per_trial: int, *, cpus: Optional[list[int]] = None,
               gpus: Optional[list[str]] = None) -> list[dict]:
  """One {'cpus': [...] or None, 'env': {...}} per trial that may run at once."""
  if parallel < 1:
    raise UserError(f'--sweep_parallel={parallel}: give 1 or more trials at a time.')
  if gpus_per_trial:
    gpus = visible_gpus() if gpus is None else gpus
    if len(gpus) < gpus_per_trial:
      raise UserError(f'--sweep_gpus_per_trial={gpus_per_trial} but {len(gpus)} GPU(s) are '
                      'visible here: lower it, or run on a machine with more GPUs.')
    if parallel * gpus_per_trial > len(gpus):
      parallel = len(gpus) // gpus_per_trial
      print(f'sweep: {len(gpus)} GPUs allow {parallel} trial(s) at a time of '
            f'{gpus_per_trial} GPU(s) each.', file=sys.stderr)
  cpus = sorted(os.sched_getaffinity(0)) if cpus is None else cpus
  share = len(cpus) // parallel
  slots = []
  for i in range(parallel):
    slot = {'cpus': cpus[i * share:(i + 1) * share] if share else None, 'env': {}}
    if gpus_per_trial:
      slot['env']['CUDA_VISIBLE_DEVICES'] = ','.join(
          gpus[i * gpus_per_trial:(i + 1) * gpus_per_trial])
    slots.append(slot)
  return slots


class _Stop:
  """Turns Ctrl-C and SIGTERM into a flag the scheduling loop reads."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGINT, signal.SIGTERM):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, _frame):
    self.signal = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def run(jobs: list[dict], *, parallel: int, gpus_per_trial: int = 0,
        on_exit: Callable[[dict, dict], None]) -> Optional[int]:
  """Runs jobs ({'name', 'workdir', 'command'}) until all have ended.

  on_exit(job, status) is called as each ends. Returns the signal number if the sweep was
  stopped by Ctrl-C or SIGTERM (the running trials were stopped and have checkpointed).
  """
  slots = make_slots(parallel, gpus_per_trial)
  queue = collections.deque(jobs)
  running = {}  # slot index -> (job, process, start time)
  with _Stop() as stop:
    while queue or running:
      if stop.signal is not None:
        _stop_all(running, on_exit)
        return stop.signal
      for i, slot in enumerate(slots):
        if queue and i not in running:
          job = queue.popleft()
          print(f'sweep: start {job["name"]}', file=sys.stderr)
          proc = trials_lib.launch(job['command'], job['workdir'], cpus=slot['cpus'],
                                   env=slot['env'])
          running[i] = (job, proc, time.time())
      for i, (job, proc, start) in list(running.items()):
        if proc.poll() is not None:
          del running[i]
          on_exit(job, trials_lib.record_exit(job['workdir'], proc.returncode,
                                              time.time() - start))
      time.sleep(0.2)
  return None


def _stop_all(running: dict, on_exit, grace_seconds: float = 300.0) -> None:
  print(f'sweep: stopping {len(running)} running trial(s); each saves a checkpoint.',
        file=sys.stderr)
  for job, proc, _ in running.values():
    if proc.poll() is None:
      proc.send_signal(signal.SIGTERM)
  deadline = time.time() + grace_seconds
  for job, proc, start in running.values():
    try:
      proc.wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
    on_exit(job, trials_lib.record_exit(job['workdir'], proc.returncode, time.time() - start,
                                        ended_by='sweep'))
