"""Train-step throughput and MFU: `python -m genlab.bench --config configs/X.py`.

Times the trainer's own compiled step (genlab.train) on batches already on the devices, then
the same step fed by the real input pipeline. MFU = XLA's FLOP estimate per step / step time /
this machine's matmul peak, measured in the same run with a large `jnp.dot`.

  python -m genlab.bench --config configs/vae_mnist.py --batch_size 256 --steps 200
"""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
from absl import flags
from ml_collections import config_flags

from genlab import cli
from genlab import data as data_lib
from genlab import parallel
from genlab import train

_BATCH = flags.DEFINE_integer('batch_size', None, 'Global batch size (default: the config\'s).')
_STEPS = flags.DEFINE_integer('steps', 100, 'Timed steps.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON file (default runs/bench/<name>_b<B>.json).')


def matmul_peak_flops(n: int = 2048, repeats: int = 10) -> float:
  """FLOP/s of a large float32 `jnp.dot` on the default device: the denominator of MFU."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  dot = jax.jit(lambda x: jnp.dot(x, x))
  dot(a).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    dot(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best * jax.local_device_count()


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get('flops', float('nan'))) if analysis else float('nan')


def benchmark(config, steps: int) -> dict:
  run = train._Run(config, workdir=None)  # pylint: disable=protected-access
  state = run.init_state()
  it = data_lib.train_iterator(config, process_index=jax.process_index(),
                               process_count=jax.process_count())
  batches = [parallel.to_global(next(it), run.mesh) for _ in range(4)]

  t0 = time.perf_counter()
  compiled = run.train_step.lower(state, batches[0]).compile()
  compile_s = time.perf_counter() - t0
  flops = _flops(compiled)

  for i in range(3):  # warm up
    state, metrics = run.train_step(state, batches[i % len(batches)])
  jax.block_until_ready(metrics)
  t0 = time.perf_counter()
  for i in range(steps):
    state, metrics = run.train_step(state, batches[i % len(batches)])
  jax.block_until_ready((state, metrics))
  step_s = (time.perf_counter() - t0) / steps

  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = run.train_step(state, parallel.to_global(next(it), run.mesh))
  jax.block_until_ready((state, metrics))
  step_with_data_s = (time.perf_counter() - t0) / steps

  peak = matmul_peak_flops()
  return {
      'method': config.method,
      'dataset': config.dataset,
      'batch_size': config.batch_size,
      'steps': steps,
      'compile_s': compile_s,
      'step_ms': step_s * 1e3,
      'examples_per_s': config.batch_size / step_s,
      'step_ms_with_input_pipeline': step_with_data_s * 1e3,
      'flops_per_step': flops,
      'peak_flops_per_s': peak,
      'mfu': flops / step_s / peak,
      'device_kind': jax.devices()[0].device_kind,
      'device_count': jax.device_count(),
      'jax_version': jax.__version__,
  }


def _main(_argv):
  config = cli.load_config()
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(
      flags.FLAGS['config'])))[0]
  if _BATCH.value:
    with config.unlocked():
      config.batch_size = _BATCH.value
  result = benchmark(config, _STEPS.value)
  output = _OUTPUT.value or os.path.join('runs', 'bench', f'{name}_b{config.batch_size}.json')
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w') as f:
    json.dump(result, f, indent=2)
  width = max(map(len, result))
  for k, v in result.items():
    print(f'{k:<{width}}  {v:.4g}' if isinstance(v, float) else f'{k:<{width}}  {v}')
  print(f'wrote {output}')


if __name__ == '__main__':
  cli.run_main(_main)
