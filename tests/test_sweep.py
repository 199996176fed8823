"""Sweeps: the trial helpers, the report, the local backend (interrupted and resumed), a real
local Ray head, and the bad-input contract."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import ml_collections
import portpicker
import pytest

from conftest import ROOT, assert_one_line_error, run_cli
from genlab import files
from genlab.errors import UserError
from genlab.sweep import local, report, spec
from genlab.sweep import trials as trials_lib

h = spec.Hyper()
SMOKE = 'configs/vae_mnist.py:smoke'


def _config():
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.optimizer = dict(name='adam', learning_rate=1e-3)
  c.model = dict(latent_dim=50, kind='mlp', hidden_dims=(200, 200))
  return c


# -- trials ---------------------------------------------------------------------------------------
def test_product_zip_chain():
  grid = h.product([h.sweep('optimizer.learning_rate', [1e-3, 3e-4]),
                    h.sweep('model.latent_dim', [2, 16, 50])])
  assert len(grid) == 6
  assert grid[0] == {'optimizer.learning_rate': 1e-3, 'model.latent_dim': 2}
  assert grid[-1] == {'optimizer.learning_rate': 3e-4, 'model.latent_dim': 50}
  zipped = h.zip([h.sweep('a', [1, 2]), h.sweep('b', [3, 4])])
  assert zipped == [{'a': 1, 'b': 3}, {'a': 2, 'b': 4}]
  assert len(h.chain([grid, zipped])) == 8
  with pytest.raises(UserError, match='different lengths'):
    h.zip([h.sweep('a', [1, 2]), h.sweep('b', [3])])
  with pytest.raises(UserError, match='swept twice'):
    h.product([h.sweep('a', [1]), h.sweep('a', [2])])
  with pytest.raises(UserError, match='at least one value'):
    h.sweep('a', [])


def test_random_search_is_seeded_and_in_range():
  space = {'lr': h.loguniform(1e-4, 1e-2), 'z': h.randint(2, 4), 'kind': h.choice(['a', 'b']),
           'fixed': 7}
  a, b = h.random(20, space, seed=3), h.random(20, space, seed=3)
  assert a == b and a != h.random(20, space, seed=4)
  assert all(1e-4 <= t['lr'] <= 1e-2 and t['z'] in (2, 3, 4) and t['fixed'] == 7 for t in a)
  assert {t['kind'] for t in a} == {'a', 'b'} and {t['z'] for t in a} == {2, 3, 4}


def test_trial_names_are_stable_short_and_unique():
  trials = spec.make_trials(h.product([h.sweep('optimizer.learning_rate', [1e-3, 3e-4]),
                                       h.sweep('model.latent_dim', [2, 16])]))
  assert [t.name for t in trials] == [
      'learning_rate=0.001,latent_dim=2', 'learning_rate=0.001,latent_dim=16',
      'learning_rate=0.0003,latent_dim=2', 'learning_rate=0.0003,latent_dim=16']
  # the same last component twice: full keys; values equal to 4 digits: more digits
  same = spec.make_trials([{'a.lr': 0.123412, 'b.lr': 1}, {'a.lr': 0.123398, 'b.lr': 1}])
  assert [t.name for t in same] == ['a.lr=0.123412,b.lr=1', 'a.lr=0.123398,b.lr=1']
  assert spec.make_trials([{'model.hidden_dims': (64, 64), 'x': 'a/b'}])[0].name == \
      'hidden_dims=64-64,x=a_b'
  with pytest.raises(UserError, match='empty'):
    spec.make_trials([])
  with pytest.raises(UserError, match='twice'):
    spec.make_trials([{'a': 1}, {'a': 1}])


def test_overrides_are_checked_against_the_config():
  c = _config()
  out = spec.apply_overrides(c, {'optimizer.learning_rate': 3e-4, 'model.latent_dim': 2})
  assert out.optimizer.learning_rate == 3e-4 and c.optimizer.learning_rate == 1e-3
  assert spec.apply_overrides(c, {'optimizer.learning_rate': 1}).optimizer.learning_rate == 1.0
  with pytest.raises(UserError, match="'model.latnet_dim' is not in the config"):
    spec.apply_overrides(c, {'model.latnet_dim': 2})
  with pytest.raises(UserError, match='wrong type'):
    spec.apply_overrides(c, {'model.latent_dim': 'big'})


def test_grid_flags_parse_by_the_configs_types():
  c = _config()
  trials = spec.trials_from(None, ['optimizer.learning_rate=1e-3,3e-4', 'model.kind=mlp,conv',
                                   'model.hidden_dims=(8,8),(16,16)'], c)
  assert len(trials) == 8
  assert trials[0].overrides == {'optimizer.learning_rate': 1e-3, 'model.kind': 'mlp',
                                 'model.hidden_dims': (8, 8)}
  assert spec.flag_value(3e-4) == '0.0003' and spec.flag_value((8, 8)) == '(8, 8)'
  with pytest.raises(UserError, match='KEY=V1,V2'):
    spec.trials_from(None, ['model.latent_dim'], c)


# -- trial status and the report ------------------------------------------------------------------
def _fake_trial(sweep_dir, name, overrides, *, nll=None, evals=(), log=None, status=None):
  d = os.path.join(sweep_dir, name)
  os.makedirs(d)
  with open(os.path.join(d, 'metrics.jsonl'), 'w') as f:
    for step, value in evals:
      f.write(json.dumps({'step': step, 'split': 'eval', 'nll': value}) + '\n')
  if nll is not None:
    files.write_json(os.path.join(d, 'results.json'),
                          {'metrics': {'nll': nll, 'kl': 1.0}, 'step': 20, 'train_seconds': 3.0})
  if log is not None:
    with open(os.path.join(d, trials_lib.LOG_FILE), 'w') as f:
      f.write(log)
  if status is not None:
    trials_lib.record_exit(d, status, 1.0, ended_by='scheduler' if status == 0 else None)
  return {'name': name, 'overrides': overrides}


def test_status_and_report(tmp_path):
  sweep = str(tmp_path)
  trials = [
      _fake_trial(sweep, 'lr=0.1', {'lr': 0.1}, nll=90.0, evals=[(10, 95.0)]),
      _fake_trial(sweep, 'lr=0.01', {'lr': 0.01}, nll=80.0, evals=[(10, 85.0)]),
      _fake_trial(sweep, 'lr=1', {'lr': 1.0}, log='train: 5%\ngenlab: error: Training diverged '
                  'at step 3.\n', status=1),
      _fake_trial(sweep, 'lr=0.5', {'lr': 0.5}, evals=[(10, 99.0)], status=0),
  ]
  statuses = {t['name']: trials_lib.status(os.path.join(sweep, t['name'])) for t in trials}
  assert [s['status'] for s in statuses.values()] == ['done', 'done', 'failed', 'stopped']
  assert statuses['lr=1']['error'] == 'Training diverged at step 3.'
  assert statuses['lr=0.5']['step'] == 10

  rows = report.collect(sweep, trials)
  paths = report.write(sweep, rows, ['lr'], 'test/nll', 'min')
  with open(paths['csv']) as f:
    lines = f.read().splitlines()
  assert lines[0].startswith('rank,trial,status,best,lr,')
  assert [l.split(',')[1] for l in lines[1:]] == ['lr=0.01', 'lr=0.1', 'lr=0.5', 'lr=1']
  assert lines[1].split(',')[3] == '1'
  md = open(paths['md']).read()
  assert '| **best** | `lr=0.01` | done |' in md and 'eval/nll' in md
  assert 'failed: Training diverged at step 3.' in md
  assert os.path.getsize(paths['png']) > 5000
  assert report.rank(rows, 'test/nll', 'max')[0]['trial'] == 'lr=0.1'
  with pytest.raises(UserError, match="No trial reports the sweep metric 'test/fid'.*test/nll"):
    report.rank(rows, 'test/fid', 'min')


def test_slots_divide_cpus_and_gpus():
  slots = local.make_slots(2, 0, cpus=[0, 1, 2, 3])
  assert [s['cpus'] for s in slots] == [[0, 1], [2, 3]] and slots[0]['env'] == {}
  assert [s['cpus'] for s in local.make_slots(3, 0, cpus=[0, 1])] == [None] * 3
  slots = local.make_slots(4, 2, cpus=[0, 1, 2, 3], gpus=['0', '1', '2', '3'])
  assert [s['env']['CUDA_VISIBLE_DEVICES'] for s in slots] == ['0,1', '2,3']
  with pytest.raises(UserError, match='1 GPU'):
    local.make_slots(1, 2, gpus=['0'])


# -- the command line -------------------------------------------------------------------------------
def test_bad_sweep_input_stops_with_one_line(tmp_path, data_dir):
  env = {'TFDS_DATA_DIR': data_dir}
  work = str(tmp_path / 'sweep')
  proc = run_cli('--config', SMOKE, '--sweep', '--workdir', work,
                 '--sweep_grid=model.latnet_dim=2,8', env=env)
  assert_one_line_error(proc, 'model.latnet_dim', 'not in the config')
  assert not os.path.exists(os.path.join(work, 'sweep.json'))
  empty = tmp_path / 'empty.py'
  empty.write_text(textwrap.dedent('''
      from configs.vae_mnist import get_config
      def get_sweep(h):
        return []
  '''))
  assert_one_line_error(run_cli('--config', str(empty), '--sweep', '--workdir', work, env=env),
                        'sweep is empty')
  port = portpicker.pick_unused_port()
  proc = run_cli('--config', SMOKE, '--sweep', '--workdir', work, '--sweep_backend=ray',
                 f'--ray_address=127.0.0.1:{port}', env=env)
  assert_one_line_error(proc, f'127.0.0.1:{port} does not answer', 'ray start --head')
  assert_one_line_error(run_cli('--config', SMOKE, '--sweep', '--workdir', work,
                                '--sweep_scheduler=asha', env=env), 'runs on Ray')
  assert_one_line_error(run_cli('--config', SMOKE, '--mode=sweep_report', '--workdir',
                                str(tmp_path / 'none'), env=env), 'holds no sweep')


def _sweep_cmd(work, *flags):
  return [sys.executable, os.path.join(ROOT, 'run.py'), '--config', SMOKE, '--sweep',
          '--workdir', work, '--sweep_grid=model.latent_dim=2,4,8', *flags]


def _run_headers(work, name):
  """How many times the sweep started this trial."""
  path = os.path.join(work, name, trials_lib.LOG_FILE)
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return f.read().count('\n=== ')


def test_local_sweep_interrupted_and_resumed(tmp_path, data_dir):
  """3 trials, 2 at a time; Ctrl-C once the first has finished; the re-run reruns no finished
  trial, completes the others, and writes the table and the plot."""
  work = str(tmp_path / 'sweep')
  env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')
  proc = subprocess.Popen(_sweep_cmd(work, '--sweep_parallel=2'), cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  names = ['latent_dim=2', 'latent_dim=4', 'latent_dim=8']
  deadline = time.time() + 300
  while not any(os.path.exists(os.path.join(work, n, 'results.json')) for n in names):
    assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-3000:]
    time.sleep(0.2)
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err[-3000:]
  assert 'stopped; re-run the same command to resume' in err
  finished = {n: os.path.getmtime(os.path.join(work, n, 'results.json')) for n in names
              if os.path.exists(os.path.join(work, n, 'results.json'))}
  assert 1 <= len(finished) < 3

  runs = {n: _run_headers(work, n) for n in names}
  again = subprocess.run(_sweep_cmd(work, '--sweep_parallel=2'), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'{len(finished)} done' in again.stderr
  for n in names:
    assert trials_lib.status(os.path.join(work, n))['status'] == 'done'
    assert _run_headers(work, n) == runs[n] + (n not in finished)
  for n, mtime in finished.items():
    assert os.path.getmtime(os.path.join(work, n, 'results.json')) == mtime
  md = open(os.path.join(work, 'sweep.md')).read()
  assert md.count('| done |') == 3 and md.count('**best**') == 1
  assert 'ranked by test/nll (min)' in md  # vae_mnist.py's SWEEP_METRIC
  assert os.path.getsize(os.path.join(work, 'sweep.png')) > 5000

  # a report by another metric reruns nothing; a metric nobody reports is one line
  proc = run_cli('--config', SMOKE, '--mode=sweep_report', '--workdir', work,
                 '--sweep_metric=test/kl', '--sweep_goal=max', check=True)
  assert 'ranked by test/kl (max)' in proc.stdout
  assert_one_line_error(run_cli('--config', SMOKE, '--mode=sweep_report', '--workdir', work,
                                '--sweep_metric=test/fid'), "'test/fid'", 'test/nll')
  assert all(_run_headers(work, n) == runs[n] + (n not in finished) for n in names)


def test_failed_trial_is_reported_and_retried_on_request(tmp_path, data_dir):
  work = str(tmp_path / 'sweep')
  env = {'TFDS_DATA_DIR': data_dir}
  args = ('--config', SMOKE, '--sweep', '--workdir', work, '--sweep_grid=model.latent_dim=0')
  proc = run_cli(*args, env=env)
  assert_one_line_error(proc, '1 of 1 trials failed', '--sweep_retry_failed')
  assert 'failed latent_dim=0' in proc.stderr and 'give an integer >= 1' in proc.stderr
  assert 'failed: config.model.latent_dim=0: give an integer >= 1.' in \
      open(os.path.join(work, 'sweep.md')).read()
  proc = run_cli(*args, env=env)
  assert 'running 0' in proc.stderr and _run_headers(work, 'latent_dim=0') == 1
  assert_one_line_error(proc, '1 of 1 trials failed')
  run_cli(*args, '--sweep_retry_failed', env=env)
  assert _run_headers(work, 'latent_dim=0') == 2


@pytest.fixture
def ray_head():
  """A Ray head on 127.0.0.1 (its sockets in a short /tmp path: AF_UNIX allows 107 bytes)."""
  port = portpicker.pick_unused_port()
  env = dict(os.environ, RAY_USAGE_STATS_ENABLED='0')
  ray = os.path.join(os.path.dirname(sys.executable), 'ray')
  temp = tempfile.mkdtemp(prefix='ray', dir='/tmp')
  proc = subprocess.run([ray, 'start', '--head', f'--port={port}', '--node-ip-address=127.0.0.1',
                         '--num-cpus=2', '--include-dashboard=false', '--disable-usage-stats',
                         f'--temp-dir={temp}'], env=env, capture_output=True, text=True,
                        timeout=180)
  assert proc.returncode == 0, proc.stderr[-3000:]
  yield f'127.0.0.1:{port}'
  subprocess.run([ray, 'stop', '--force'], env=env, capture_output=True, timeout=180)
  shutil.rmtree(temp, ignore_errors=True)


def test_ray_sweep_with_asha_through_a_local_head(tmp_path, data_dir, ray_head):
  """The same sweep through a Ray head on 127.0.0.1, with ASHA: at least one trial finishes,
  the others finish or are stopped at a validation step; a re-run runs none of them again."""
  work = str(tmp_path / 'sweep')
  env = {'TFDS_DATA_DIR': data_dir, 'RAY_USAGE_STATS_ENABLED': '0'}
  proc = run_cli('--config', SMOKE, '--sweep', '--workdir', work, '--sweep_backend=ray',
                 f'--ray_address={ray_head}', '--sweep_grid=optimizer.learning_rate=1e-2,1e-5,3e-6',
                 '--sweep_scheduler=asha', '--sweep_parallel=2', env=env, check=True)
  names = ['learning_rate=0.01', 'learning_rate=1e-05', 'learning_rate=3e-06']
  statuses = {n: trials_lib.status(os.path.join(work, n)) for n in names}
  assert statuses['learning_rate=0.01']['status'] == 'done', proc.stderr[-3000:]
  assert all(s['status'] in ('done', 'stopped') for s in statuses.values()), statuses
  # Stopped at a validation step (10, or 20 when the trial got there before Ray killed it).
  assert all(s['step'] in (10, 20) for s in statuses.values() if s['status'] == 'stopped')
  assert '| **best** | `learning_rate=0.01` |' in proc.stdout
  again = run_cli('--config', SMOKE, '--sweep', '--workdir', work, '--sweep_backend=ray',
                  f'--ray_address={ray_head}',
                  '--sweep_grid=optimizer.learning_rate=1e-2,1e-5,3e-6', env=env, check=True)
  assert 'running 0' in again.stderr
  assert all(_run_headers(work, n) == 1 for n in names)
