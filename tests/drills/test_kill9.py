"""Drill: kill -9 at random steps of a GAN (WGAN-GP), a VAE and a TBPTT char-LSTM, each resumed
by re-running the same command; the final train state (parameters, optimizer, carried LSTM
state, step) and every metrics row must be bit-identical to an uninterrupted run.

The runs log every step, checkpoint every 10 and evaluate every 30, so a kill lands as often
in a checkpoint write or an evaluation as in a step. The full drill (10 kills per model) is
`-m slow`; CI runs one kill of the GAN.
"""
import time

import numpy as np
import pytest

import drill_lib as drills

SCHEDULE = {'num_train_steps': 60, 'log_every_steps': 1, 'checkpoint_every_steps': 10,
            'eval_every_steps': 30}
NO_SAMPLE_METRICS = {'eval.sample_metrics': (), 'eval.test_sample_metrics': ()}
MODELS = {
    'WGAN-GP': ('wgan_gp_mnist', {**SCHEDULE, **NO_SAMPLE_METRICS}),
    'VAE': ('vae_mnist', SCHEDULE),
    'char-LSTM (TBPTT)': ('lstm_char_shakespeare', {**SCHEDULE, 'baseline.orders': ()}),
}


def kill_and_resume(model: str, kills: int, seed: int, tmp_path) -> None:
  name, overrides = MODELS[model]
  total = overrides['num_train_steps']
  started = time.time()
  reference = str(tmp_path / 'reference')
  done = drills.run(name, reference, overrides)
  assert done.returncode == 0, done.stderr[-3000:]
  want_state = drills.final_state(name, overrides, reference)
  want_rows = drills.metric_rows(reference, split=None)

  targets = sorted(np.random.default_rng(seed).choice(np.arange(1, total - 1), kills,
                                                      replace=False))
  landed, same = [], 0
  for i, target in enumerate(targets):
    workdir = str(tmp_path / f'killed_{i}')
    proc = drills.start(name, workdir, overrides)
    drills.wait_until(lambda w=workdir, t=target: any(s >= t for s in drills.logged_steps(w)),
                      proc, 300, f'step {target}')
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9
    landed.append(max(drills.logged_steps(workdir)))
    resumed = drills.run(name, workdir, overrides)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    same += (drills.identical(drills.final_state(name, overrides, workdir), want_state)
             and drills.metric_rows(workdir, split=None) == want_rows)
  drills.report(f'kill -9, {model}',
                f'{same}/{kills} resumed runs bit-identical (killed after steps {landed} of '
                f'{total}, checkpoints every 10; {time.time() - started:.0f} s)')
  assert same == kills


@pytest.mark.parametrize('model', ['WGAN-GP'])
def test_one_kill(model, data_dir, tmp_path):
  kill_and_resume(model, kills=1, seed=1, tmp_path=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize('model', list(MODELS))
def test_ten_kills(model, data_dir, tmp_path):
  kill_and_resume(model, kills=10, seed=0, tmp_path=tmp_path)
