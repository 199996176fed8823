"""One trial on disk: its command, its status, and how it ended (shared by every backend).

A trial is an ordinary genlab run, `python run.py --config FILE --workdir SWEEP/NAME
--config.KEY=VALUE ...`, in a process of its own, its output in SWEEP/NAME/sweep.log. Its
status is read from its workdir, so any backend, and a re-run of the sweep, agree on it:
  done         results.json is there (training ended and the test evaluation was written)
  failed       the run exited non-zero; sweep_status.json keeps the error line
  stopped      early stopping (ASHA) ended it; sweep_status.json keeps the step reached
  interrupted  checkpoints but no results.json: re-running resumes it from its checkpoint
  pending      never started
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from genlab import files
from genlab.sweep import spec

STATUS_FILE = 'sweep_status.json'
LOG_FILE = 'sweep.log'
RUN_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'run.py')


def command(config_arg: str, workdir: str, overrides: dict) -> list[str]:
  """The trial's command line; the interpreter is the first word (a Ray node swaps in its own).

  `overrides` holds the sweep's base overrides and the trial's own, the trial's winning.
  """
  return [sys.executable, RUN_PY, '--config', config_arg, '--workdir', workdir,
          *(f'--config.{k}={spec.flag_value(v)}' for k, v in overrides.items())]


def status(workdir: str) -> dict:
  """{'status': done | failed | stopped | interrupted | pending, ...} of a trial's workdir."""
  recorded = files.read_json(os.path.join(workdir, STATUS_FILE))
  if os.path.exists(os.path.join(workdir, 'results.json')):
    return dict(recorded or {}, status='done')
  if recorded and recorded.get('status') in ('failed', 'stopped'):
    return recorded
  if os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return {'status': 'interrupted'}
  return {'status': 'pending'}


def forget(workdir: str) -> None:
  """Clears a failed or stopped trial's record, so that it runs (and resumes) again."""
  path = os.path.join(workdir, STATUS_FILE)
  if os.path.exists(path):
    os.remove(path)


# Exit codes of a genlab run stopped by SIGINT / SIGTERM (after saving; genlab/signals.py).
STOPPED_BY_SIGNAL = (128 + signal.SIGINT, 128 + signal.SIGTERM)


def record_exit(workdir: str, returncode: int, seconds: float, *,
                ended_by: Optional[str] = None) -> dict:
  """Writes how a trial's process ended and returns its status. `ended_by`: 'sweep' when the
  sweep stopped it (it resumes later, whatever its exit code), 'scheduler' when early stopping
  did (it is not run again)."""
  if os.path.exists(os.path.join(workdir, 'results.json')):
    out = {'status': 'done'}
  elif ended_by == 'scheduler':
    rows = eval_rows(workdir)
    out = {'status': 'stopped', 'step': rows[-1]['step'] if rows else 0}
  elif returncode not in (0, *STOPPED_BY_SIGNAL) and ended_by != 'sweep':
    out = {'status': 'failed', 'returncode': returncode,
           'error': error_line(os.path.join(workdir, LOG_FILE))}
  else:  # SIGINT or SIGTERM: genlab saved a checkpoint (or had not started training)
    out = {'status': 'interrupted'}
  out['seconds'] = round(seconds, 1)
  if out['status'] != 'interrupted':  # (an interrupted trial keeps any earlier record)
    files.write_json(os.path.join(workdir, STATUS_FILE), out)
  return out


def error_line(log_path: str) -> str:
  """genlab's one-line error from a trial's log, else its last line (e.g. an exception)."""
  try:
    with open(log_path, errors='replace') as f:
      lines = [l.strip() for l in f.read().replace('\r', '\n').splitlines() if l.strip()]
  except OSError:
    return 'no log'
  for line in reversed(lines):
    if line.startswith('genlab: error:'):
      return line[len('genlab: error:'):].strip()
  return lines[-1][:300] if lines else 'no output'


def eval_rows(workdir: str) -> list[dict]:
  """The validation rows ({"step", "split": "eval", ...}) of metrics.jsonl."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.readlines()
  rows = []
  for line in lines:
    try:
      row = json.loads(line)
    except ValueError:  # a line being written
      continue
    if row.get('split') == 'eval':
      rows.append(row)
  return rows


def _child_setup(cpus: Optional[list[int]]):
  """Runs in the trial's process before exec: pinned to its CPUs, and sent SIGTERM (which
  saves a checkpoint) if the sweep's process dies, so no trial outlives its sweep."""
  def setup():
    if cpus:
      os.sched_setaffinity(0, cpus)
    try:
      ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      pass
  return setup


def launch(cmd: list[str], workdir: str, *, cpus: Optional[list[int]] = None,
           env: Optional[dict] = None) -> subprocess.Popen:
  """Starts a trial in its own session (a Ctrl-C of the sweep reaches the sweep only, which
  then stops each trial with SIGTERM: they checkpoint), output appended to its log."""
  os.makedirs(workdir, exist_ok=True)
  log = open(os.path.join(workdir, LOG_FILE), 'a')
  log.write(f'\n=== {time.strftime("%Y-%m-%d %H:%M:%S")} {" ".join(cmd)}\n')
  log.flush()
  full_env = dict(os.environ, **(env or {}))
  try:
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                            start_new_session=True, preexec_fn=_child_setup(cpus))
  finally:
    log.close()

