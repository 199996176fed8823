"""The benchmark command writes every figure it promises, and they are consistent."""
import json
import os
import subprocess
import sys

from conftest import ROOT
from test_train import SMOKE


def test_bench_writes_consistent_json(data_dir, tmp_path):
  out = tmp_path / 'bench.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'genlab.bench', '--config', SMOKE, '--batch_size', '32',
       '--steps', '5', '--output', str(out)],
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
