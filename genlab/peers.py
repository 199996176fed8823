"""Multi-process runs: when one process dies, the others stop within a bounded time, with one line.

JAX's collectives (gloo on the CPU, NCCL on GPUs) wait for a dead peer until the coordination
service misses its heartbeats (100 s by default), and then abort every other process with a
page of C++ logs. So each genlab process also beats a counter in the coordination service's
key-value store, once a second, and a daemon thread watches the others' counters:
- a peer whose counter has not moved for GENLAB_PEER_TIMEOUT seconds (default 30; killed, or
  its machine is gone), or a coordinator (process 0) that stops answering, ends this process
  with one `genlab: error:` line and exit 2;
- a process that ends first writes how it ended: the others carry on after an exit 0 (it
  finished) and stop at once after any other exit (it failed or was interrupted alone).
The last complete checkpoint is kept either way: re-running the same command on every process
resumes from it. The watch checks liveness, not progress: a slow step is not a lost peer.

One death the watch cannot report is the coordinator's: JAX's client polls the service
without pause and aborts its process the moment the service goes away. So each process of a
multi-process run is a worker under a small supervisor (`supervise`, the process the user
started, which imports no JAX): it passes SIGINT and SIGTERM on, and when the worker is killed
by a signal it says so in one line.
"""
from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

_PREFIX = 'genlab_peers/'
_WORKER = 'GENLAB_SUPERVISED'  # set in the worker's environment by its supervisor
_INTERVAL = 1.0
DEFAULT_TIMEOUT = 30.0


def timeout() -> float:
  """GENLAB_PEER_TIMEOUT (seconds without a beat before a peer counts as lost)."""
  return float(os.environ.get('GENLAB_PEER_TIMEOUT', DEFAULT_TIMEOUT))


def _client():
  from jax._src import distributed  # pylint: disable=g-import-not-at-top  (no public handle)
  return distributed.global_state.client


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


class _Watch(threading.Thread):

  def __init__(self, client, me: int, count: int, coordinator: str, limit: float):
    super().__init__(name='genlab-peers', daemon=True)
    self.client, self.me, self.count = client, me, count
    self.coordinator, self.limit = coordinator, limit
    self.leaving = threading.Event()

  def beat(self, value: str) -> None:
    self.client.key_value_set(f'{_PREFIX}{self.me}', value, allow_overwrite=True)

  def run(self) -> None:
    start = time.monotonic()
    seen = {i: (None, start) for i in range(self.count) if i != self.me}
    beat = 0
    while not self.leaving.is_set():
      beat += 1
      try:
        self.beat(str(beat))
        values = {k.rsplit('/', 1)[-1]: v for k, v in self.client.key_value_dir_get(_PREFIX)}
      except Exception as e:  # pylint: disable=broad-except
        self.lost(f'the coordinator {self.coordinator} (process 0) stopped answering '
                  f'({_first_line(e)})')
        return
      now = time.monotonic()
      for peer, (last, since) in seen.items():
        value = values.get(str(peer))
        if value is not None and value.startswith('exit '):
          if value != 'exit 0':
            self.lost(f'process {peer} stopped ({value})')
          continue
        if value != last:
          seen[peer] = (value, now)
        elif now - since > self.limit:
          self.lost(f'process {peer} stopped answering for {self.limit:g} s (killed, or its '
                    'machine is gone)')
      self.leaving.wait(_INTERVAL)

  def lost(self, why: str) -> None:
    if self.leaving.is_set():
      return  # this process is ending on its own: its line is already out
    # (A new line first: the line may cut into a progress bar.)
    print(f'\ngenlab: error: process {self.me} of {self.count}: {why}; this one stops too. '
          'Re-run the same command on every process: it resumes from the last complete '
          'checkpoint.', file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(2)  # pylint: disable=protected-access  (the main thread may wait in a collective)


_watch: Optional[_Watch] = None


def start(coordinator: str) -> None:
  """Starts watching the other processes (after jax.distributed.initialize)."""
  global _watch
  import jax  # pylint: disable=g-import-not-at-top
  if _watch is not None or jax.process_count() == 1:
    return
  _watch = _Watch(_client(), jax.process_index(), jax.process_count(), coordinator, timeout())
  _watch.beat('0')
  _watch.start()


def wait_for_lost_peer() -> None:
  """After an unexpected error in a multi-process run: gives the watch the time to tell whether
  a peer died (collectives fail with a bare connection error when one does); it then ends the
  process with its line. Returns when none did."""
  if _watch is not None and not _watch.leaving.is_set():
    _watch.join(_watch.limit + 3 * _INTERVAL)


def leave(code: int) -> None:
  """Tells the others how this process ends. After a failure (code != 0) it ends at once: the
  others stop too rather than meet at JAX's shutdown barrier."""
  if _watch is None:
    return
  _watch.leaving.set()
  try:
    _watch.beat(f'exit {code}')
  except Exception:  # pylint: disable=broad-except  (the coordinator may be gone already)
    pass
  if code != 0:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # pylint: disable=protected-access


# -- the supervisor ------------------------------------------------------------------------------
def needs_supervisor() -> bool:
  """True in a process of a multi-process run that is not yet a supervised worker."""
  return bool(os.environ.get('GENLAB_COORDINATOR')) and not os.environ.get(_WORKER)


def _die_with_parent() -> None:
  """In the worker, before exec: the kernel kills it when its supervisor dies (kill -9 of the
  process the user started must not leave a worker training on its own)."""
  os.setsid()  # a terminal's Ctrl-C reaches the supervisor alone, which passes it on once
  try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
  except (OSError, AttributeError):
    pass


def supervise(argv: list[str]) -> int:
  """Runs this command again as the worker; returns the exit code to leave with."""
  worker = subprocess.Popen([sys.executable, *argv], env=dict(os.environ, **{_WORKER: '1'}),
                            preexec_fn=_die_with_parent)
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda signum, _: worker.send_signal(signum))
  code = worker.wait()
  if code >= 0:
    return code  # the worker has said why, if it failed
  me = os.environ.get('GENLAB_PROCESS_ID', '?')
  count = os.environ.get('GENLAB_NUM_PROCESSES', '?')
  name = signal.Signals(-code).name
  if -code == signal.SIGABRT:
    why = ('JAX\'s distributed runtime ended it (it does when another process dies or the '
           f'coordinator {os.environ["GENLAB_COORDINATOR"]} stops answering; its log is above)')
  else:
    why = f'it was killed by {name}{" (out of memory?)" if -code == signal.SIGKILL else ""}'
  print(f'genlab: error: process {me} of {count}: {why}. Re-run the same command on every '
        'process: it resumes from the last complete checkpoint.', file=sys.stderr, flush=True)
  return 2 if -code == signal.SIGABRT else 128 - code


def quiet_abort() -> None:
  """In a supervised worker: no Python stack dump when JAX aborts it (its supervisor says what
  happened in one line)."""
  if os.environ.get(_WORKER):
    faulthandler.disable()
