"""The run directory on disk: one writer at a time, and clear lines for paths that cannot be."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from genlab import workdir as workdir_lib
from genlab.errors import UserError

SMOKE = os.path.join(ROOT, 'configs', 'vae_mnist.py') + ':smoke'


def test_lock_names_its_holder_and_is_released(tmp_path):
  workdir = str(tmp_path / 'w')
  with workdir_lib.lock(workdir, 'train'):
    holder = json.load(open(os.path.join(workdir, workdir_lib.LOCK_FILE)))
    assert holder['pid'] == os.getpid() and holder['mode'] == 'train'
    with pytest.raises(UserError, match=rf'in use by process {os.getpid()} on .* \(train, since'):
      with workdir_lib.lock(workdir, 'eval'):
        pass
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))
  with workdir_lib.lock(workdir, 'eval'):  # free again
    pass


def test_lock_of_a_killed_process_is_stale(tmp_path):
  """kill -9 leaves the file, but the kernel released the flock: the next run takes it."""
  workdir = str(tmp_path / 'w')
  code = ('import sys, time; sys.path.insert(0, %r)\n'
          'from genlab import workdir\n'
          'with workdir.lock(%r, "train"):\n'
          '  print("locked", flush=True); time.sleep(60)\n') % (ROOT, workdir)
  proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == 'locked'
  with pytest.raises(UserError, match=f'in use by process {proc.pid}'):
    with workdir_lib.lock(workdir, 'train'):
      pass
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))  # left behind, stale
  with workdir_lib.lock(workdir, 'train'):
    assert json.load(open(os.path.join(workdir, workdir_lib.LOCK_FILE)))['pid'] == os.getpid()


def test_resume_drops_metric_rows_past_the_checkpoint_and_a_torn_row(tmp_path):
  """A full disk or kill -9 can cut the last metrics.jsonl row short; resuming must not choke
  on it, nor append the next row to its remains."""
  from genlab import writers  # pylint: disable=g-import-not-at-top
  writer = writers.Writer(str(tmp_path))
  for step in (10, 20, 30):
    writer.scalars(step, 'train', {'loss': 1.0 / step})
  path = tmp_path / 'metrics.jsonl'
  with open(path, 'a') as f:
    f.write('{"step": 40, "split": "train", "lo')
  writer.forget_after(20)
  writer.scalars(30, 'train', {'loss': 0.5})
  rows = [json.loads(line) for line in open(path)]
  assert [r['step'] for r in rows] == [10, 20, 30] and rows[-1]['loss'] == 0.5
  writer.close()


def test_a_failed_tensorboard_write_reaches_the_caller(tmp_path, monkeypatch):
  """A full disk under the event file must stop the run with its error; tensorboardX's own
  writer thread died there and the run blocked forever on its queue (a CI hang)."""
  import errno  # pylint: disable=g-import-not-at-top
  from tensorboardX import record_writer  # pylint: disable=g-import-not-at-top
  from genlab import writers  # pylint: disable=g-import-not-at-top
  writer = writers.Writer(str(tmp_path))
  writer.scalars(1, 'train', {'loss': 1.0})
  writer.images(1, {'grid': np.zeros((4, 4, 1))})
  writer.flush()
  events = b''.join(p.read_bytes() for p in (tmp_path / 'tensorboard').iterdir())
  assert b'train/loss' in events and b'samples/grid' in events

  def full(self, data):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
  monkeypatch.setattr(record_writer.RecordWriter, 'write', full)
  done = []
  thread = threading.Thread(target=lambda: done.append(_raised(
      lambda: [writer.scalars(s, 'train', {'loss': 1.0}) for s in range(2, 40)])), daemon=True)
  thread.start()
  thread.join(60)
  assert done and isinstance(done[0], OSError) and done[0].errno == errno.ENOSPC, done
  assert 'tfevents' in done[0].filename  # the one line names the file


def _raised(fn):
  try:
    fn()
  except Exception as e:  # pylint: disable=broad-except
    return e
  return None


def test_workdir_that_is_a_file_or_under_a_file(tmp_path):
  path = tmp_path / 'f'
  path.write_text('x')
  with pytest.raises(UserError, match='is a file, not a directory'):
    workdir_lib.check_writable(str(path))
  with pytest.raises(UserError, match='cannot be made: .* is a file'):
    workdir_lib.check_writable(str(path / 'sub' / 'run'))
  workdir_lib.check_writable(str(tmp_path / 'new' / 'run'))  # made later, by the run
  assert not os.path.exists(tmp_path / 'new')


@pytest.mark.parametrize('output, words', [
    ('samples', ('ending in .npz',)),
    ('missing_dir/s.npz', ('does not exist', 'mkdir -p')),
    ('a_dir.npz', ('is a directory',)),
])
def test_bad_sample_output(output, words, tmp_path):
  (tmp_path / 'a_dir.npz').mkdir()
  with pytest.raises(UserError) as e:
    workdir_lib.check_output(str(tmp_path / output))
  for word in words:
    assert word in str(e.value)


def test_cli_workdir_is_a_file(tmp_path):
  path = tmp_path / 'f'
  path.write_text('x')
  proc = run_cli('--config', SMOKE, '--workdir', str(path))
  assert_one_line_error(proc, 'is a file, not a directory')
  assert path.read_text() == 'x'


def test_cli_second_run_in_a_busy_workdir_is_refused(data_dir, tmp_path):
  """Two runs started in one workdir: the second stops with one line naming the first; the
  first goes on undisturbed (stopped here by SIGTERM), with every metrics row once."""
  workdir = str(tmp_path / 'busy')
  long = [f'--config.{k}={v}' for k, v in
          {'num_train_steps': 100_000, 'log_every_steps': 20,
           'checkpoint_every_steps': 100}.items()]
  first = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'run.py'), '--config', SMOKE, '--workdir', workdir,
       *long], cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS='cpu'), stdout=subprocess.PIPE,
      stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE)):
    assert first.poll() is None and time.time() < deadline, first.communicate()[1][-2000:]
    time.sleep(0.05)
  second = run_cli('--config', SMOKE, '--workdir', workdir, *long)
  assert_one_line_error(second, f'in use by process {first.pid}', '(train, since')
  evaluation = run_cli('--config', SMOKE, '--workdir', workdir, '--mode=eval', *long)
  assert_one_line_error(evaluation, f'in use by process {first.pid}')
  assert first.poll() is None, 'the first run ended before the others were refused'
  first.send_signal(signal.SIGTERM)
  _, err = first.communicate(timeout=300)
  assert first.returncode == 128 + signal.SIGTERM, err[-2000:]
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  steps = [r['step'] for r in rows if r['split'] == 'train']
  assert steps and steps == list(range(20, steps[-1] + 1, 20))
  assert len(os.listdir(os.path.join(workdir, 'tensorboard'))) == 1
