"""Data parallelism: 8 devices, 1 device and 2 processes x 4 devices train the same model.

Each run is the real command line in a subprocess (the device count is fixed when jax is
imported); the parameters are then read back from the checkpoints.
"""
import os
import subprocess
import sys

import jax
import numpy as np
import portpicker
import pytest

from conftest import ROOT, run_cli
from test_train import SMOKE, params_of

STEPS = ['--config.num_train_steps=20', '--config.checkpoint_every_steps=20',
         '--config.eval_every_steps=20', '--config.batch_size=32']
OVERRIDES = {'num_train_steps': 20, 'checkpoint_every_steps': 20, 'eval_every_steps': 20,
             'batch_size': 32}


def _devices_env(n):
  return {'XLA_FLAGS': f'--xla_force_host_platform_device_count={n}', 'JAX_PLATFORMS': 'cpu'}


def _assert_close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, atol=1e-5, rtol=0)


def test_8_devices_match_1_device(data_dir, tmp_path):
  for n in (1, 8):
    run_cli('--config', SMOKE, '--workdir', str(tmp_path / f'd{n}'), *STEPS,
            env=_devices_env(n), check=True)
  one, eight = params_of(str(tmp_path / 'd1'), **OVERRIDES), params_of(
      str(tmp_path / 'd8'), **OVERRIDES)
  _assert_close(one, eight)


def test_2_processes_match_1_process(data_dir, tmp_path):
  single = str(tmp_path / 'single')
  run_cli('--config', SMOKE, '--workdir', single, *STEPS, env=_devices_env(8), check=True)
  multi = str(tmp_path / 'multi')
  port = portpicker.pick_unused_port()
  procs = []
  for i in range(2):
    env = dict(os.environ, **_devices_env(4), GENLAB_COORDINATOR=f'127.0.0.1:{port}',
               GENLAB_NUM_PROCESSES='2', GENLAB_PROCESS_ID=str(i))
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'run.py'), '--config', SMOKE, '--workdir', multi,
         *STEPS], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  for p in procs:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
  _assert_close(params_of(single, **OVERRIDES), params_of(multi, **OVERRIDES))


def _states_on_1_and_8_devices(name, tmp_path):
  """The final train states of configs/<name>.py:smoke (no sample metrics) trained on 1 and on
  8 devices by the command line."""
  from genlab import train  # pylint: disable=g-import-not-at-top
  config = os.path.join(ROOT, 'configs', f'{name}.py') + ':smoke'
  off = ['--config.eval.sample_metrics=()', '--config.eval.test_sample_metrics=()']
  for n in (1, 8):
    run_cli('--config', config, '--workdir', str(tmp_path / f'd{n}'), *STEPS, *off,
            env=_devices_env(n), check=True)

  def state_of(workdir):
    import importlib  # pylint: disable=g-import-not-at-top
    c = importlib.import_module(f'configs.{name}').get_config('smoke')
    for k, v in OVERRIDES.items():
      c[k] = v
    c.eval.sample_metrics, c.eval.test_sample_metrics = (), ()
    return train.restore(c, workdir)[1]
  return state_of(str(tmp_path / 'd1')), state_of(str(tmp_path / 'd8'))


@pytest.mark.slow  # 50 s; test_8_devices_match_1_device covers the mesh in CI
def test_dcgan_8_devices_match_1_device(data_dir, tmp_path):
  """Batch norm statistics are global over the sharded batch, so the GAN step is the same."""
  one, eight = _states_on_1_and_8_devices('dcgan_mnist', tmp_path)
  _assert_close((one.g_params, one.d_params, one.ema_params),
                (eight.g_params, eight.d_params, eight.ema_params))


@pytest.mark.slow  # ~1 min; test_8_devices_match_1_device covers the mesh in CI
def test_conditional_ddpm_8_devices_match_1_device(data_dir, tmp_path):
  """The per-example noise levels, noise and label dropout are drawn for the global batch, so
  the diffusion step is the same on a sharded batch."""
  one, eight = _states_on_1_and_8_devices('ddpm_cond_mnist', tmp_path)
  _assert_close((one.params, one.ema_params), (eight.params, eight.ema_params))


def test_lstm_with_carried_state_on_8_devices_matches_1_device(data_dir, tmp_path):
  """The TBPTT carry (replicated in the state) and the sharded windows: the same step."""
  config = os.path.join(ROOT, 'configs', 'lstm_char_shakespeare.py') + ':smoke'
  for n in (1, 8):
    run_cli('--config', config, '--workdir', str(tmp_path / f'd{n}'),
            '--config.num_train_steps=6', '--config.baseline.orders=()',
            env=_devices_env(n), check=True)
  from configs import lstm_char_shakespeare  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  c = lstm_char_shakespeare.get_config('smoke')
  c.num_train_steps, c.baseline.orders = 6, ()
  one, eight = (train.restore(c, str(tmp_path / f'd{n}'))[1] for n in (1, 8))
  assert c.data.tbptt
  _assert_close((one.params, one.carry), (eight.params, eight.carry))
