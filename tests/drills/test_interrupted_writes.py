"""Drill: a checkpoint write interrupted by SIGTERM, SIGINT, a second SIGINT, or a full disk.

A signal is sent the moment Orbax's temporary step directory appears (a write takes 0.1-0.4 s
here), and the drill checks it was still being written after the signal. The disk is a small
tmpfs (mounting one needs root; the drill skips otherwise) filled while the run is paused
right after a checkpoint, so that the next checkpoint cannot fit. Each case must end with one
line and its exit code, keep the earlier checkpoints, and resume to a final state
bit-identical to an uninterrupted run's. CI runs SIGTERM and the full disk; the SIGINT cases
are slow (test_train.py checks SIGINT's save and exit code).
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

import drill_lib as drills

NAME = 'vae_mnist'
RUN = {'num_train_steps': 200, 'log_every_steps': 1, 'checkpoint_every_steps': 20,
       'eval_every_steps': 100}


@pytest.fixture(scope='module')
def reference(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('reference'))
  done = drills.run(NAME, workdir, RUN)
  assert done.returncode == 0, done.stderr[-3000:]
  return drills.final_state(NAME, RUN, workdir)


def _writing(workdir: str) -> list[str]:
  try:
    return [n for n in os.listdir(os.path.join(workdir, 'checkpoints')) if 'tmp' in n]
  except FileNotFoundError:
    return []


def _resume_matches(workdir: str, reference) -> bool:
  resumed = drills.run(NAME, workdir, RUN)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  return drills.identical(drills.final_state(NAME, RUN, workdir), reference)


@pytest.mark.parametrize('signals', [
    (signal.SIGTERM,),
    pytest.param((signal.SIGINT,), marks=pytest.mark.slow),
    pytest.param((signal.SIGINT, signal.SIGINT), marks=pytest.mark.slow)],
    ids=['SIGTERM', 'SIGINT', 'SIGINT twice'])
def test_signal_during_a_checkpoint_write(signals, reference, tmp_path):
  workdir = str(tmp_path / 'run')
  proc = drills.start(NAME, workdir, RUN)
  # The second checkpoint's write, so that one complete checkpoint is there before it.
  drills.wait_until(lambda: drills.checkpoint_steps(workdir) and _writing(workdir), proc, 300,
                    'a second checkpoint write', poll=0.001)
  written = _writing(workdir)[0].split('.')[0]
  for i, signum in enumerate(signals):
    if i:
      time.sleep(0.02)
    proc.send_signal(signum)
  during = written in ''.join(_writing(workdir)) or not os.path.exists(
      os.path.join(workdir, 'checkpoints', written, 'commit_success.txt'))
  _, err = proc.communicate(timeout=300)
  name = signal.Signals(signals[0]).name
  assert proc.returncode == 128 + signals[0], err[-3000:]
  assert 'Traceback' not in err
  stopped = [l for l in drills.lines(err) if l.startswith('genlab: stopped by')]
  assert len(stopped) == 1 and f'stopped by {name}' in stopped[0], err[-3000:]
  steps = drills.checkpoint_steps(workdir)
  assert int(written) in steps  # the write under way completed (its step is committed)
  if len(signals) == 1:
    assert f'at step {steps[-1]}, after saving its checkpoint' in stopped[0]
  same = _resume_matches(workdir, reference)
  drills.report(f'{" then ".join(signal.Signals(s).name for s in signals)} during a checkpoint '
                'write', f'exit {proc.returncode}, one line; write of step {written} '
                f'{"under way when signalled" if during else "had just ended"} and complete; '
                f'checkpoints {steps}; resumed bit-identical: {same}')
  assert same


def _mount_tmpfs(path: str, size: str) -> None:
  os.makedirs(path)
  proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', path],
                        capture_output=True, text=True)
  if proc.returncode:
    pytest.skip(f'cannot mount a tmpfs here ({proc.stderr.strip()}): the disk-full drill '
                'needs root')


def test_disk_full_during_a_checkpoint_write(reference, tmp_path):
  disk = str(tmp_path / 'disk')
  _mount_tmpfs(disk, '24m')
  try:
    workdir = os.path.join(disk, 'run')
    proc = drills.start(NAME, workdir, RUN)
    drills.wait_until(lambda: drills.checkpoint_steps(workdir), proc, 300, 'a checkpoint',
                      poll=0.001)
    proc.send_signal(signal.SIGSTOP)  # fill the disk before the next checkpoint
    kept = drills.checkpoint_steps(workdir)
    stat = os.statvfs(disk)
    filler = os.path.join(disk, 'filler')
    with open(filler, 'wb') as f:
      f.write(b'\0' * (stat.f_bavail * stat.f_frsize - 200 * 1024))  # 200 KB left
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=300)
    errors = [l for l in drills.lines(err) if l.startswith('genlab: error:')]
    assert proc.returncode == 2 and len(errors) == 1, err[-3000:]
    assert 'No space left on device' in errors[0] and 'free some space' in errors[0]
    assert 'Traceback' not in err
    assert drills.checkpoint_steps(workdir)[:len(kept)] == kept  # earlier ones intact
    assert drills.final_state(NAME, RUN, workdir).step == max(drills.checkpoint_steps(workdir))
    os.remove(filler)  # space returns
    same = _resume_matches(workdir, reference)
    drills.report('disk full during a checkpoint write (tmpfs)',
                  f'exit 2, one line ("{errors[0][15:60]}..."); checkpoints {kept} intact; '
                  f'resumed bit-identical once space returned: {same}')
    assert same
  finally:
    subprocess.run(['umount', '-l', disk], check=False)
    shutil.rmtree(disk, ignore_errors=True)
