"""benchmarks/peers.py, the genlab-vs-PyTorch table: it runs end to end, and refuses bad rows.

Why: the README's speed table comes from this one command; a plumbing break (a peer's
make_step renamed, genlab.bench's helpers changed) must show here, not on the day someone
measures. The smallest row at 2 repeats of 2 steps checks the plumbing and the output, not
speed (no timing is asserted). torch is not a genlab requirement: that test is skipped
without it; the unknown-row test runs everywhere, since names are checked before torch loads.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, assert_one_line_error

PEERS = os.path.join(ROOT, 'benchmarks', 'peers.py')


def _peers(*args, timeout=300):
  return subprocess.run([sys.executable, PEERS, *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=timeout, env=dict(os.environ, JAX_PLATFORMS='cpu'))


def test_vae_row_prints_the_table_and_writes_json(data_dir, tmp_path):
  pytest.importorskip('torch')  # a benchmark-only dependency (requirements-bench.txt)
  out = tmp_path / 'peers.json'
  proc = _peers('--rows=vae_b64', '--repeats=2', '--steps=2', '--passive_wait',
                f'--output={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '| step | PyTorch | genlab | genlab / PyTorch speed |' in proc.stdout
  ms = r'[\d.]+ ms \([\d.]+-[\d.]+\)'
  assert re.search(rf'\| VAE \(Burda MLP\), batch 64 \| {ms} \| {ms} \| [\d.]+x \|',
                   proc.stdout), proc.stdout
  r = json.loads(out.read_text())
  assert r['repeats'] == 2 and r['omp_wait_policy'] == 'PASSIVE' and r['torch_threads'] >= 1
  assert {'torch_version', 'jax_version', 'device_kind', 'cpu_count'} <= set(r)
  assert list(r['rows']) == ['vae_b64']
  row = r['rows']['vae_b64']
  assert row['batch_size'] == 64 and row['steps'] == 2 and row['peer'] == 'benchmarks/torch_vae.py'
  for side in ('genlab', 'torch'):
    ms_list = row[f'{side}_ms']
    assert len(ms_list) == 2 and all(v > 0 for v in ms_list)
    assert row[f'{side}_ms_min'] <= row[f'{side}_ms_median'] <= row[f'{side}_ms_max']
  assert row['speed_ratio'] == pytest.approx(row['torch_ms_median'] / row['genlab_ms_median'])


def test_unknown_row_is_a_one_line_error(tmp_path):
  proc = _peers('--rows=vae_b64,vae_b1024', f'--output={tmp_path / "peers.json"}', timeout=120)
  assert_one_line_error(proc, "'vae_b1024'", 'vae_b64', 'style_transfer')
  assert not (tmp_path / 'peers.json').exists()
