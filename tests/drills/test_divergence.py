"""Drill: NaN injected at step k (config.debug.nan_at_step turns every parameter into NaN after
the step that first uses batch k-1), under each divergence policy, through the command line.

- policy=stop: exit 2, one line naming step k; no checkpoint after step k-1 (no NaN is
  saved), no results.json, and config.json describes the checkpoints that are there.
- policy=rollback: back to the last checkpoint, the batch skipped, the run finishes with
  finite results and a 'divergence' row in metrics.jsonl saying what was done.
- a learning rate that diverges on every batch: gives up after max_rollbacks, in one line.

Slow: test_train.py holds CI's cases of each policy.
"""
import json
import os

import numpy as np
import pytest

import drill_lib as drills

NAME = 'vae_mnist'
RUN = {'num_train_steps': 40, 'log_every_steps': 5, 'checkpoint_every_steps': 10,
       'eval_every_steps': 20}
STEPS = (7, 23, 38)  # before the first checkpoint, between two, just before the end


def stop_at(k, tmp_path):
  workdir = str(tmp_path / f'stop_{k}')
  proc = drills.run(NAME, workdir, {**RUN, 'debug.nan_at_step': k})
  errors = drills.error_lines(proc)
  assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
  assert f'is nan at step {k}.' in errors[0], errors[0]
  saved = drills.checkpoint_steps(workdir)
  assert saved == [s for s in (10, 20, 30, 40) if s < k]
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  assert os.path.exists(os.path.join(workdir, 'config.json')) == bool(saved)
  return saved


def rollback_at(k, tmp_path):
  workdir = str(tmp_path / f'rollback_{k}')
  proc = drills.run(NAME, workdir, {**RUN, 'debug.nan_at_step': k,
                                     'divergence.policy': 'rollback'})
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = drills.metric_rows(workdir, split='divergence')
  last_good = max([s for s in (10, 20, 30) if s < k], default=0)
  assert rows == [{'step': k, 'split': 'divergence', 'rolled_back_to': last_good,
                   'skipped_batch': k - 1}], rows
  results = json.load(open(os.path.join(workdir, 'results.json')))
  assert results['step'] == RUN['num_train_steps']
  assert all(np.isfinite(v) for v in results['metrics'].values())
  return last_good


def check_policies(steps, tmp_path):
  stopped = {k: stop_at(k, tmp_path) for k in steps}
  rolled = {k: rollback_at(k, tmp_path) for k in steps}
  drills.report('NaN at step k, policy=stop',
                f'{len(steps)}/{len(steps)} stopped in one line naming k (k = {list(steps)}); '
                f'checkpoints kept {list(stopped.values())}, none after k-1')
  drills.report('NaN at step k, policy=rollback',
                f'{len(steps)}/{len(steps)} finished with finite results (k = {list(steps)}, '
                f'rolled back to steps {list(rolled.values())}, batch k-1 skipped)')


@pytest.mark.slow
def test_nan_at_three_steps_and_a_hopeless_run(data_dir, tmp_path):
  check_policies(STEPS, tmp_path)
  proc = drills.run(NAME, str(tmp_path / 'hopeless'),
                    {**RUN, 'optimizer.learning_rate': 1e30, 'divergence.policy': 'rollback',
                     'divergence.max_rollbacks': 3})
  errors = drills.error_lines(proc)
  assert proc.returncode == 2 and len(errors) == 1 and 'again after 3 rollbacks' in errors[0]
  drills.report('learning rate 1e30, policy=rollback',
                'gave up after 3 rollbacks, in one line (exit 2)')
