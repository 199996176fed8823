"""Train-step throughput and MFU: `python -m genlab.bench --config configs/X.py`.

Times the trainer's own compiled step (genlab.train) on batches already on the devices, then
the same step fed by the real input pipeline. MFU = XLA's FLOP estimate per step / step time /
this machine's matmul peak, measured in the same run with a large `jnp.dot`.

  python -m genlab.bench --config configs/vae_mnist.py --batch_size 256 --steps 200

A language model also reports tokens/s, generation speed (tokens/s at batch 1 and 64 from the
jitted lax.scan sampler), and its train step with the LSTM run over time each way
(model.time_loop): at the config's window the cell in a lax.scan and the input projections
hoisted out of it; at --time_loop_seq_len also each with an unroll of 8, and a Python loop
unrolled by hand (its compile time grows with the window, hence the shorter window).
StyleGAN2 also reports each phase's step (with and without the lazy regularisers) and the
'main' step with the modulated convolution as grouped conv, vmapped per-sample weights and
styles on the activations (`modconv/<impl>/step_ms`). A diffusion model reports its step with
the U-Net's convolutions in each equal form (`conv/<impl>/step_ms`) and the seconds per 1,000
samples of each sampler (`sample/<sampler>_<steps>_steps/s_per_1000`).

With --profile_steps N, N more steps run under jax.profiler and the result adds where their
time went: each compiled operation's time summed by kind (`profile/<kind>/ms_per_step`; the
kind is XLA's name for it without its number, e.g. `ynn_fusion`, the convolutions and dots
that XLA's CPU backend hands to YNNPACK), the total, and `profile/ops_in_parallel`, that total
over the wall time: how many operations run at once (about 1.1 on this CPU). `cpu_cores_busy`
(always reported) is the process's CPU time over the wall time of the timed steps: on this
2-core CPU, 1.7 for DCGAN's step; 1.4 for the DDPM step whole, 1.86 in its 4 slices (batch_split).
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import resource
import tempfile
import time

import jax
import jax.numpy as jnp
from absl import flags
from ml_collections import config_flags

from genlab import cli
from genlab import data as data_lib
from genlab import parallel
from genlab import train
from genlab.errors import UserError

_GENERATE_LENGTH = 256


def _define_flags():
  """The command's flags, defined only when it runs as a command: benchmarks/peers.py imports
  this module's helpers and defines flags of the same names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _OUTPUT, _TIME_LOOP_SEQ_LEN, _PROFILE_STEPS
  _BATCH = flags.DEFINE_integer('batch_size', None,
                                'Global batch size (default: the config\'s).')
  _STEPS = flags.DEFINE_integer('steps', 100, 'Timed steps.')
  _OUTPUT = flags.DEFINE_string('output', None,
                                'JSON file (default runs/bench/<name>_b<B>.json).')
  _TIME_LOOP_SEQ_LEN = flags.DEFINE_integer(
      'time_loop_seq_len', 32, 'Language models: the window of the scan-vs-unrolled '
      'comparison (0 skips it).')
  _PROFILE_STEPS = flags.DEFINE_integer(
      'profile_steps', 0, 'Also trace this many steps with jax.profiler and report the time of '
      'each kind of compiled operation (0: no trace).')


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


def prepare_step(config, num_batches: int = 4):
  """(run, state, iterator, batches): the trainer's run for `config` (its compiled step is
  `run.train_step_at(step)`), its initial state, and `num_batches` batches of the real input
  pipeline already on the devices, so that a timing measures the step and not the pipeline."""
  run = train._Run(config, workdir=None)  # pylint: disable=protected-access
  state = run.init_state()
  it = data_lib.train_iterator(config, process_index=jax.process_index(),
                               process_count=jax.process_count())
  batches = [parallel.to_global(next(it), run.mesh) for _ in range(num_batches)]
  return run, state, it, batches


def run_steps(run, state, batches, first_step: int, steps: int):
  """(state, seconds) of `steps` trainer steps numbered from `first_step` (so that a method's
  phases come in turn), cycling through `batches`, waited for to the end."""
  t0 = time.perf_counter()
  for i in range(steps):
    state, metrics = run.train_step_at(first_step + i)(state, batches[i % len(batches)])
  jax.block_until_ready((state, metrics))
  return state, time.perf_counter() - t0


def _time_step(config, steps: int):
  """(run, state, iterator, compile_s, flops, step_s, cores) of the trainer's step on device
  batches; cores = the process's CPU time over the wall time of the timed steps."""
  run, state, it, batches = prepare_step(config)

  t0 = time.perf_counter()
  compiled = run.train_step_at(0).lower(state, batches[0]).compile()
  compile_s = time.perf_counter() - t0
  flops = _flops(compiled)
  if run.method.phase is not None:  # the mean over the timed steps of each one's phase
    per_phase = {}
    for i in range(steps):
      label = run.method.phase(3 + i)
      if label not in per_phase:
        per_phase[label] = _flops(run.train_step_at(3 + i).lower(state, batches[0]).compile())
    flops = sum(per_phase[run.method.phase(3 + i)] for i in range(steps)) / steps

  state, _ = run_steps(run, state, batches, 0, 3)  # warm up
  cpu0 = _cpu_seconds()
  state, seconds = run_steps(run, state, batches, 3, steps)
  return run, state, it, compile_s, flops, seconds / steps, (_cpu_seconds() - cpu0) / seconds


def _cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def language_model(config, run, state, step_s: float, steps: int, time_loop_seq_len: int,
                   peak: float) -> dict:
  """Tokens/s of training and generation, and the step under three loops over time."""
  tokens = config.batch_size * config.data.seq_len
  # XLA's cost analysis counts a scan's body once, not once per time step; so the MFU of a
  # language model is taken from 6 x (parameters used in matmuls) x tokens (Kaplan et al. 2020).
  dense = sum(x.size for path, x in jax.tree_util.tree_leaves_with_path(state.params)
              if 'embed' not in jax.tree_util.keystr(path))
  out = {'tokens_per_s': tokens / step_s, 'flops_per_step_6nd': 6 * dense * tokens,
         'mfu_6nd': 6 * dense * tokens / step_s / peak}
  key = jax.random.key(0)
  for n in (1, 64):
    run.method.generate_text(state, key, n, length=_GENERATE_LENGTH)  # compile
    t0 = time.perf_counter()
    run.method.generate_text(state, key, n, length=_GENERATE_LENGTH)
    out[f'generate_tokens_per_s_batch{n}'] = n * _GENERATE_LENGTH / (time.perf_counter() - t0)
  # The two scans at the config's own window (the step above is the config's loop), then
  # every loop at a short window, where the Python loop's compile time stays bearable.
  own = config.model.get('time_loop', 'scan')
  out[f'time_loop_T{config.data.seq_len}/{own}/step_ms'] = step_s * 1e3
  loops = [(f'T{config.data.seq_len}', None, loop, config.model.get('unroll', 1))
           for loop in ('scan', 'hoisted') if loop != own]
  if time_loop_seq_len:
    loops += [(f'T{time_loop_seq_len}', time_loop_seq_len, loop, k) for loop, k in (
        ('scan', 1), ('scan', 8), ('hoisted', 1), ('hoisted', 8), ('unrolled', 1))]
  for window, seq_len, loop, k in loops:
    variant = config.copy_and_resolve_references()
    with variant.unlocked():
      variant.data.seq_len = seq_len or variant.data.seq_len
      variant.model.unroll, variant.model.time_loop = k, loop
    _, _, _, compile_s, _, loop_s, _ = _time_step(variant, max(1, steps // 4))
    name = f'time_loop_{window}/{loop}' + (f'_unroll{k}' if k > 1 else '')
    out[f'{name}/step_ms'] = loop_s * 1e3
    out[f'{name}/compile_s'] = compile_s
  return out


def phase_times(run, state, it, repeats: int, cycle: int = 64):
  """(state, figures) of a method with phases (Method.phase): the step time of each phase met
  in the first `cycle` step numbers, e.g. StyleGAN2's step with and without each lazy
  regulariser."""
  batch = parallel.to_global(next(it), run.mesh)
  out, done = {}, set()
  for step in range(cycle):
    phase = run.method.phase(step)
    if phase in done:
      continue
    done.add(phase)
    fn = run.train_step_at(step)
    state, metrics = fn(state, batch)  # compiled by now; warm
    jax.block_until_ready(metrics)
    state, out[f'phase/{phase}/step_ms'] = _mean_ms(fn, state, batch, repeats)
  return state, out


def _mean_ms(fn, state, batch, repeats: int):
  """(state, mean ms) of `repeats` calls of a warm step."""
  t0 = time.perf_counter()
  for _ in range(repeats):
    state, metrics = fn(state, batch)
  jax.block_until_ready((state, metrics))
  return state, (time.perf_counter() - t0) / repeats * 1e3


def impl_times(config, key: str, impls, name: str, repeats: int) -> dict:
  """The train step with config.model.<key> set to each of `impls`, equal forms of one
  computation (StyleGAN2's modulated convolution, the U-Net's convolutions), to keep the
  fastest as the default. A method with phases is timed at its first 'main' step."""
  out = {}
  for impl in impls:
    variant = config.copy_and_resolve_references()
    with variant.unlocked():
      variant.model[key] = impl
    run = train._Run(variant, workdir=None)  # pylint: disable=protected-access
    state = run.init_state()
    it = data_lib.train_iterator(variant, process_index=jax.process_index(),
                                 process_count=jax.process_count())
    batch = parallel.to_global(next(it), run.mesh)
    step = (next(t for t in range(1, 64) if run.method.phase(t) == 'main')
            if run.method.phase else 1)
    fn = run.train_step_at(step)
    t0 = time.perf_counter()
    state, metrics = fn(state, batch)
    jax.block_until_ready(metrics)
    out[f'{name}/{impl}/compile_s'] = time.perf_counter() - t0
    _, out[f'{name}/{impl}/step_ms'] = _mean_ms(fn, state, batch, repeats)
  return out


def sampler_times(config, state, num: int = 100, steps: int = 50) -> dict:
  """Diffusion: seconds per 1,000 samples of each sampler at `steps` steps (the trainer's
  jitted sampler, one lax.scan, `num` images a call), and at the config's own step count
  (scaled linearly: every step is one network evaluation)."""
  from genlab.methods import diffusion  # pylint: disable=g-import-not-at-top
  out = {}
  steps = min(steps, config.diffusion.timesteps)
  for kind in diffusion.SAMPLERS:
    variant = config.copy_and_resolve_references()
    with variant.unlocked():
      variant.sampler.update(kind=kind, steps=steps)
    run = train._Run(variant, workdir=None)  # pylint: disable=protected-access
    run.draw(state, jax.random.key(0), num)  # compile
    t0 = time.perf_counter()
    run.draw(state, jax.random.key(1), num)
    per_1000 = (time.perf_counter() - t0) * 1000 / num
    out[f'sample/{kind}_{steps}_steps/s_per_1000'] = per_1000
    if kind == config.sampler.kind and config.sampler.steps != steps:
      out[f'sample/{kind}_{config.sampler.steps}_steps/s_per_1000_scaled'] = (
          per_1000 * config.sampler.steps / steps)
  return out


# Trace events that wrap the compiled operations rather than being one: not summed.
_WRAPPERS = ('ThunkExecutor', 'PjitFunction', 'PjRt', 'CommonPjRt', 'Execute', 'SlinkyThreadPool',
             '$', 'end: ')


def operation_profile(run, state, batches, steps: int, top: int = 12):
  """(state, figures): `steps` trainer steps traced with jax.profiler (perfetto format), and
  each kind of compiled operation's time per step, the `top` kinds by time, the total, and
  the total over the wall time (ops_in_parallel: how many operations ran at once on average;
  a library's own worker threads inside one operation, e.g. YNNPACK's, are not counted)."""
  with tempfile.TemporaryDirectory() as log_dir:
    with jax.profiler.trace(log_dir, create_perfetto_trace=True):
      state, wall = run_steps(run, state, batches, 0, steps)
    traces = glob.glob(os.path.join(log_dir, '**', '*.trace.json.gz'), recursive=True)
    if not traces:
      raise UserError(f'jax.profiler wrote no *.trace.json.gz under {log_dir}: this jax '
                      f'({jax.__version__}) traces differently; run without --profile_steps.')
    with gzip.open(traces[0]) as f:
      events = json.load(f)
  events = events['traceEvents'] if isinstance(events, dict) else events
  by_kind = collections.Counter()
  for e in events:
    if e.get('ph') == 'X' and not e['name'].startswith(_WRAPPERS):
      by_kind[re.sub(r'\.\d+$', '', e['name'])] += e.get('dur', 0) / 1e3 / steps  # us -> ms
  total = sum(by_kind.values())
  out = {'profile/ops_ms_per_step': total,
         'profile/ops_in_parallel': total / (wall / steps * 1e3)}
  out.update({f'profile/{kind}/ms_per_step': ms for kind, ms in by_kind.most_common(top)})
  return state, out


def benchmark(config, steps: int, time_loop_seq_len: int = 0, profile_steps: int = 0) -> dict:
  run, state, it, compile_s, flops, step_s, cores = _time_step(config, steps)

  t0 = time.perf_counter()
  for i in range(steps):
    state, metrics = run.train_step_at(i)(state, parallel.to_global(next(it), run.mesh))
  jax.block_until_ready((state, metrics))
  step_with_data_s = (time.perf_counter() - t0) / steps

  peak = matmul_peak_flops()
  extra = {}
  if run.method.phase:
    state, extra = phase_times(run, state, it, max(1, steps // 10))
  if 'modconv_impl' in config.get('model', {}):
    from genlab.models import stylegan2  # pylint: disable=g-import-not-at-top
    extra.update(impl_times(config, 'modconv_impl', stylegan2.MODCONV_IMPLS, 'modconv',
                            max(1, steps // 20)))
  if config.method == 'diffusion':
    from genlab.models import layers  # pylint: disable=g-import-not-at-top
    extra.update(impl_times(config, 'conv_impl', layers.CONV_IMPLS, 'conv',
                            max(1, steps // 10)))
    extra.update(sampler_times(config, state))
  if run.method.generate_text is not None:
    extra = language_model(config, run, state, step_s, steps, time_loop_seq_len, peak)
  if profile_steps:
    batches = [parallel.to_global(next(it), run.mesh) for _ in range(2)]
    state, profile = operation_profile(run, state, batches, profile_steps)
    extra.update(profile)
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
      'cpu_cores_busy': cores,
      'device_kind': jax.devices()[0].device_kind,
      'device_count': jax.device_count(),
      'jax_version': jax.__version__,
      **extra,
  }


def _main(_argv):
  config = cli.load_config()
  name = os.path.splitext(os.path.basename(config_flags.get_config_filename(
      flags.FLAGS['config'])))[0]
  if _BATCH.value:
    with config.unlocked():
      config.batch_size = _BATCH.value
  result = benchmark(config, _STEPS.value, _TIME_LOOP_SEQ_LEN.value, _PROFILE_STEPS.value)
  output = _OUTPUT.value or os.path.join('runs', 'bench', f'{name}_b{config.batch_size}.json')
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w') as f:
    json.dump(result, f, indent=2)
  width = max(map(len, result))
  for k, v in result.items():
    print(f'{k:<{width}}  {v:.4g}' if isinstance(v, float) else f'{k:<{width}}  {v}')
  print(f'wrote {output}')


if __name__ == '__main__':
  _define_flags()
  cli.run_main(_main)
