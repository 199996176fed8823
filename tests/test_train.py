"""The trainer end to end on the VAE smoke config: run directory, modes, exact resume, faults."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import ROOT, run_cli
from genlab import sampling
from genlab import train

SMOKE = os.path.join(ROOT, 'configs', 'vae_mnist.py') + ':smoke'


def smoke_config(**overrides):
  from configs import vae_mnist  # pylint: disable=g-import-not-at-top
  config = vae_mnist.get_config('smoke')
  config.update_from_flattened_dict(overrides)
  return config


def params_of(workdir, **overrides):
  _, state, _ = train.restore(smoke_config(**overrides), workdir)
  return jax.tree.map(np.asarray, state.params)


def assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope='module')
def trained(data_dir, tmp_path_factory):
  """One uninterrupted smoke run (20 steps, checkpoints at 10 and 20)."""
  workdir = str(tmp_path_factory.mktemp('trained'))
  results = train.train_and_evaluate(smoke_config(), workdir)
  return workdir, results


def test_run_directory_has_everything(trained):
  workdir, results = trained
  assert json.load(open(os.path.join(workdir, 'config.json')))['method'] == 'vae'
  assert sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit()) == [10, 20]
  assert glob.glob(os.path.join(workdir, '**', 'events.out.tfevents.*'), recursive=True)
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  train_rows = [r for r in rows if r['split'] == 'train']
  assert [r['step'] for r in train_rows] == [5, 10, 15, 20]
  assert all(np.isfinite(r['loss']) for r in train_rows)
  assert {r['step'] for r in rows if r['split'] == 'eval'} == {10, 20}
  pngs = {os.path.basename(p) for p in glob.glob(os.path.join(workdir, 'samples', '*.png'))}
  assert {'samples_0000010.png', 'samples_0000020.png', 'reconstructions_0000020.png'} <= pngs
  saved = json.load(open(os.path.join(workdir, 'results.json')))
  assert saved['step'] == 20 and saved['device_count'] == jax.device_count()
  assert saved['metrics'] == results['metrics'] and saved['train_seconds'] > 0
  assert np.isfinite(saved['metrics']['nll'])


def test_rerun_of_finished_workdir_resumes_without_training(trained):
  workdir, _ = trained
  before = os.path.getsize(os.path.join(workdir, 'metrics.jsonl'))
  results = train.train_and_evaluate(smoke_config(), workdir)
  assert results['step'] == 20
  rows = open(os.path.join(workdir, 'metrics.jsonl')).read()[before:]
  assert '"split": "train"' not in rows


def test_relative_workdir(data_dir, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  train.train_and_evaluate(smoke_config(num_train_steps=10), os.path.join('runs', 'rel'))
  assert os.path.exists(tmp_path / 'runs' / 'rel' / 'checkpoints' / '10' / 'commit_success.txt')


def test_eval_mode_matches_training_results(trained):
  workdir, results = trained
  assert train.evaluate(smoke_config(), workdir)['metrics'] == results['metrics']


def test_sample_mode_is_reproducible(trained, tmp_path):
  workdir, _ = trained
  a = sampling.sample(smoke_config(), workdir, 2500, str(tmp_path / 'a.npz'))
  b = sampling.sample(smoke_config(), workdir, 2500, str(tmp_path / 'b.npz'))
  sa, sb = np.load(a)['samples'], np.load(b)['samples']
  assert sa.shape == (2500, 28, 28, 1) and sa.dtype == np.float32
  assert 0.0 <= sa.min() and sa.max() <= 1.0
  np.testing.assert_array_equal(sa, sb)
  assert not np.array_equal(sa[:1000], sa[1000:2000])  # chunks use different keys
  other = sampling.sample(smoke_config(seed=1), workdir, 10, str(tmp_path / 'c.npz'))
  assert not np.array_equal(np.load(other)['samples'], sa[:10])


def test_resume_from_checkpoint_is_bit_identical(trained, tmp_path):
  workdir, _ = trained
  partial = str(tmp_path / 'partial')
  # Stop after step 10 by SIGTERM-free means: train 10 of the 20 steps, then finish.
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(workdir, partial)
  shutil.rmtree(os.path.join(partial, 'checkpoints', '20'))
  train.train_and_evaluate(smoke_config(), partial)
  assert_trees_equal(params_of(partial), params_of(workdir))


def _corrupt(step_dir):
  """Truncates every array file of a saved step."""
  for path in glob.glob(os.path.join(step_dir, 'state', '**', '*'), recursive=True):
    if os.path.isfile(path) and os.path.basename(path) != 'commit_success.txt':
      open(path, 'wb').close()


def test_corrupt_latest_checkpoint_falls_back(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'w')
  shutil.copytree(trained[0], workdir)
  _corrupt(os.path.join(workdir, 'checkpoints', '20'))
  record = open(os.path.join(workdir, 'results.json')).read()
  # --mode=eval evaluates step 10 but leaves results.json (step 20) and the checkpoints as
  # they are: its numbers go to evals/, and it never moves a step a training run may use.
  results = train.evaluate(smoke_config(), workdir)
  assert results['step'] == 10
  assert open(os.path.join(workdir, 'results.json')).read() == record
  assert json.load(open(os.path.join(workdir, 'evals', 'step_0000010', 'results.json'))
                   )['metrics'] == results['metrics']
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_corrupt'))
  # Training sets step 20 aside and re-creates it, identical to the original.
  train.train_and_evaluate(smoke_config(), workdir)
  aside = os.listdir(os.path.join(workdir, 'checkpoints_corrupt'))
  assert len(aside) == 1 and aside[0].startswith('20-')
  assert_trees_equal(params_of(workdir), params_of(trained[0]))
  assert json.load(open(os.path.join(workdir, 'results.json')))['metrics'] == json.loads(
      record)['metrics']


def test_half_written_checkpoint_is_skipped(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'w')
  shutil.copytree(trained[0], workdir)
  os.remove(os.path.join(workdir, 'checkpoints', '20', 'commit_success.txt'))
  assert train.evaluate(smoke_config(), workdir)['step'] == 10


def _snapshot(workdir):
  """Every file under `workdir` (hidden ones too), by relative path: its bytes."""
  out = {}
  for folder, _, names in os.walk(workdir):
    for name in names:
      path = os.path.join(folder, name)
      out[os.path.relpath(path, workdir)] = open(path, 'rb').read()
  return out


def test_nan_stops_with_step_and_metric(data_dir, tmp_path):
  config = smoke_config(**{'optimizer.learning_rate': 1e30})
  with pytest.raises(train.TrainingDiverged, match=r"metric '\w+' is (nan|inf) at step \d+"):
    train.train_and_evaluate(config, str(tmp_path / 'nan'))


def _steps(workdir):
  return sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())


def test_injected_nan_is_detected_at_its_step_and_never_saved(data_dir, tmp_path):
  workdir = str(tmp_path / 'nan')
  config = smoke_config(**{'debug.nan_at_step': 13, 'log_every_steps': 5})
  with pytest.raises(train.TrainingDiverged, match='is nan at step 13.*policy=rollback'):
    train.train_and_evaluate(config, workdir)
  assert _steps(workdir) == [10]  # step 15's log found it: nothing was saved after step 12
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  saved = json.load(open(os.path.join(workdir, 'config.json')))
  assert saved['debug']['nan_at_step'] == 13  # the config of the checkpoint that is there


def test_rollback_skips_the_batch_and_finishes(trained, tmp_path):
  workdir = str(tmp_path / 'rollback')
  config = smoke_config(**{'debug.nan_at_step': 13, 'divergence.policy': 'rollback'})
  results = train.train_and_evaluate(config, workdir)
  assert results['step'] == 20 and all(np.isfinite(v) for v in results['metrics'].values())
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  assert [r for r in rows if r['split'] == 'divergence'] == [
      {'step': 13, 'split': 'divergence', 'rolled_back_to': 10, 'skipped_batch': 12}]
  clean = [json.loads(l) for l in open(os.path.join(trained[0], 'metrics.jsonl'))]
  strip = lambda rs: [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rs
                      if r['split'] == 'train']
  assert strip(rows)[:2] == strip(clean)[:2]  # steps 5 and 10: before the fault, identical
  assert strip(rows)[2:] != strip(clean)[2:]  # after it, one batch further along the stream


def test_rollback_gives_up_after_max_rollbacks(data_dir, tmp_path):
  config = smoke_config(**{'optimizer.learning_rate': 1e30, 'divergence.policy': 'rollback',
                           'divergence.max_rollbacks': 2})
  with pytest.raises(train.TrainingDiverged, match='again after 2 rollbacks'):
    train.train_and_evaluate(config, str(tmp_path / 'hopeless'))


def test_eval_keeps_training_fields_and_sends_other_configs_to_evals(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'w')
  shutil.copytree(trained[0], workdir)
  before = json.load(open(os.path.join(workdir, 'results.json')))
  again = train.evaluate(smoke_config(), workdir)
  after = json.load(open(os.path.join(workdir, 'results.json')))
  assert after == before and again['steps_per_sec'] == before['steps_per_sec']
  other = train.evaluate(smoke_config(**{'eval.test_num_importance_samples': 4}), workdir)
  assert json.load(open(os.path.join(workdir, 'results.json'))) == before
  record = json.load(open(os.path.join(workdir, 'evals', 'step_0000020', 'results.json')))
  assert record['metrics'] == other['metrics'] != before['metrics']
  assert record['config_differences'] == {'eval.test_num_importance_samples': [16, 4]}


# -- the command line (bad input: tests/drills/test_malformed_input.py) ------------------------


def test_all_checkpoints_corrupt_is_one_clear_line(trained, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / 'w')
  shutil.copytree(trained[0], workdir)
  for step in ('10', '20'):
    _corrupt(os.path.join(workdir, 'checkpoints', step))
  before = _snapshot(workdir)
  proc = run_cli('--config', SMOKE, '--workdir', workdir, '--mode=eval')
  assert proc.returncode == 2
  assert 'genlab: error: No usable checkpoint' in proc.stderr
  assert _snapshot(workdir) == before


def _start(workdir, *args):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'run.py'), '--config', SMOKE, '--workdir', workdir,
       *[f'--config.{k}={v}' for k, v in LONG.items()], *args],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(workdir, proc, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = glob.glob(os.path.join(workdir, 'checkpoints', '*', 'commit_success.txt'))
    if steps:
      return
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    time.sleep(0.05)
  raise AssertionError('no checkpoint appeared')


LONG = {'num_train_steps': 1000, 'checkpoint_every_steps': 20, 'eval_every_steps': 5000,
        'log_every_steps': 20}


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_and_exits_128_plus_signum(signum, data_dir, tmp_path):
  """Ctrl-C is SIGTERM's twin: a checkpoint at the end of the step, one line, no traceback."""
  workdir = str(tmp_path / 'term')
  proc = _start(workdir)
  _wait_for_checkpoint(workdir, proc)
  proc.send_signal(signum)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + signum, err[-3000:]
  assert 'Traceback' not in err
  name = signal.Signals(signum).name
  stopped = [l for l in err.splitlines() if l.startswith(f'genlab: stopped by {name} at step')]
  assert len(stopped) == 1, err[-3000:]
  steps = [int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit()]
  assert 0 < max(steps) < LONG['num_train_steps']
  assert f'at step {max(steps)},' in stopped[0]  # the step it stopped at is the one it saved
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  assert not os.path.exists(os.path.join(workdir, 'run.lock'))
  # The checkpoint is complete: resuming from it finishes the run.
  assert train.restore(smoke_config(**LONG), workdir)[1].step == max(steps)
