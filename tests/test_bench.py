"""The benchmark command writes every figure it promises, and they are consistent."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from test_train import SMOKE


def test_bench_writes_consistent_json(data_dir, tmp_path):
  out = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'genlab.bench', '--config', SMOKE, '--batch_size', '32',
       '--steps', '5', '--profile_steps', '3', '--output', str(out)],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-2000:]
  r = json.loads(out.read_text())
  assert r['batch_size'] == 32 and r['steps'] == 5
  assert r['compile_s'] > 0 and r['step_ms'] > 0 and r['peak_flops_per_s'] > 0
  assert r['flops_per_step'] > 0
  assert abs(r['examples_per_s'] - 32 / (r['step_ms'] / 1e3)) < 1e-6 * r['examples_per_s']
  expected_mfu = r['flops_per_step'] / (r['step_ms'] / 1e3) / r['peak_flops_per_s']
  assert abs(r['mfu'] - expected_mfu) < 1e-9 and 0 < r['mfu'] < 1
  assert 'step_ms' in proc.stdout
  assert 0 < r['cpu_cores_busy']
  # --profile_steps: the largest kinds of compiled operation, which cannot add up to more than
  # the total, and no wrapper event among them.
  kinds = {k: v for k, v in r.items() if k.startswith('profile/') and k.endswith('/ms_per_step')
           and k != 'profile/ops_ms_per_step'}
  assert kinds and all(v > 0 for v in kinds.values())
  assert sum(kinds.values()) <= r['profile/ops_ms_per_step'] * (1 + 1e-9)
  assert r['profile/ops_in_parallel'] > 0
  assert not any(k.split('/')[1].startswith(('ThunkExecutor', '$')) for k in kinds)


def test_bench_of_a_language_model_reports_tokens_generation_and_time_loops(data_dir, tmp_path):
  out = tmp_path / 'lm.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'genlab.bench', '--config',
       'configs/lstm_char_shakespeare.py:smoke', '--steps', '4', '--time_loop_seq_len', '4',
       '--output', str(out)],
      cwd=ROOT, capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-2000:]
  r = json.loads(out.read_text())
  tokens = 8 * 16  # the smoke batch and window
  assert abs(r['tokens_per_s'] - tokens / (r['step_ms'] / 1e3)) < 1e-6 * r['tokens_per_s']
  assert 0 < r['mfu_6nd'] < 1
  assert r['generate_tokens_per_s_batch64'] > 0 and r['generate_tokens_per_s_batch1'] > 0
  for loop in ('scan', 'scan_unroll8', 'hoisted', 'hoisted_unroll8', 'unrolled'):
    assert r[f'time_loop_T4/{loop}/step_ms'] > 0, loop
  assert r['time_loop_T16/scan/step_ms'] == r['step_ms'] and r['time_loop_T16/hoisted/step_ms'] > 0


def _bench_smoke(config, tmp_path):
  """The JSON of `python -m genlab.bench` over 4 steps of `config`."""
  out = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'genlab.bench', '--config', config, '--steps', '4',
       '--output', str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-2000:]
  return json.loads(out.read_text())


@pytest.mark.slow  # ~3 min of compiles (4 phases, 3 modulated-conv forms)
def test_bench_of_stylegan2_reports_phases_and_modconv_forms(data_dir, tmp_path):
  r = _bench_smoke('configs/stylegan2_mnist.py:smoke', tmp_path)
  # smoke intervals: pl every 2 steps, r1 every 4
  assert {k for k in r if k.startswith('phase/')} == {
      f'phase/{p}/step_ms' for p in ('main', 'main+pl', 'main+pl+r1')}
  for impl in ('grouped', 'batched', 'activation'):
    assert r[f'modconv/{impl}/step_ms'] > 0 and r[f'modconv/{impl}/compile_s'] > 0, impl
  assert 0 < r['mfu'] < 1


@pytest.mark.slow  # ~1-2 min of compiles (3 convolution forms, 2 samplers)
def test_bench_of_diffusion_reports_conv_forms_and_sampler_speeds(data_dir, tmp_path):
  r = _bench_smoke('configs/ddpm_mnist.py:smoke', tmp_path)
  for impl in ('xla', 'space_to_depth', 'matmul'):
    assert r[f'conv/{impl}/step_ms'] > 0, impl
  # smoke: 20 noise levels, DDIM with 5 steps; both samplers timed at 20 steps
  assert r['sample/ddim_20_steps/s_per_1000'] > 0
  assert r['sample/ancestral_20_steps/s_per_1000'] > 0
  assert 'sample/ddim_5_steps/s_per_1000_scaled' in r

