"""What every PyTorch peer's command (benchmarks/torch_*.py) shares: torch imported after the
OpenMP wait policy is set, N timed steps after a warm-up, one summary line and a JSON file.

Imported inside the scripts' `main` (benchmarks/ is on sys.path when one runs as a script), so
that tests and benchmarks/peers.py load the scripts' networks and steps without it.
"""
import json
import os
import time

INSTALL = 'pip install -r requirements-bench.txt'


def import_torch(passive_wait: bool, threads=None, error=SystemExit):
  """torch with `threads` threads (default: the core count) and seed 0.

  With `passive_wait`, OMP_WAIT_POLICY=PASSIVE first: it is read when torch loads its OpenMP
  runtime, and on a CPU shared with other jobs threads that spin at barriers can make a step
  ~10x slower. `error` is what a missing torch raises (with how to install it).
  """
  if passive_wait:
    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise error(f'torch is not installed (a benchmark-only dependency, not a genlab '
                f'requirement): {INSTALL}') from e
  torch.set_num_threads(threads or os.cpu_count())
  torch.manual_seed(0)
  return torch


def time_steps(step, warmup: int, steps: int) -> dict:
  """step_ms_median / _mean / _min / _max of `steps` calls of `step` after `warmup` untimed
  ones (each step waits for its own result, e.g. with .item())."""
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(1e3 * (time.perf_counter() - start))
  times.sort()
  return dict(steps=steps, step_ms_median=round(times[len(times) // 2], 3),
              step_ms_mean=round(sum(times) / len(times), 3), step_ms_min=round(times[0], 3),
              step_ms_max=round(times[-1], 3))


def report(torch, timing: dict, label: str, output, *, per_step: int = 0,
           unit: str = 'examples', **fields) -> dict:
  """Prints one line for `timing` (time_steps) and writes it, with `fields`, as JSON to
  `output` (when given); `per_step` examples (or `unit`s) a step adds their rate per second."""
  result = dict(framework='torch', torch_version=torch.__version__,
                threads=torch.get_num_threads(),
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'), **fields, **timing)
  rate = ''
  if per_step:
    result[f'{unit}_per_s'] = round(1e3 * per_step / timing['step_ms_median'], 1)
    rate = f', {result[f"{unit}_per_s"]:.1f} {unit}/s'
  print(f'torch {torch.__version__} threads={result["threads"]} {label}: '
        f'{timing["step_ms_median"]:.2f} ms/step (median of {timing["steps"]}; mean '
        f'{timing["step_ms_mean"]:.2f}, min {timing["step_ms_min"]:.2f}, max '
        f'{timing["step_ms_max"]:.2f}){rate}')
  if output:
    with open(output, 'w') as f:
      json.dump(result, f, indent=1)
  return result


def define_flags(batch_size: int, batch_help: str, steps: int, warmup: int):
  """The flags every peer's command has: (batch_size, steps, warmup, threads, output,
  passive_wait) holders, defined when the script runs as a command (its `_define_flags`)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  return (flags.DEFINE_integer('batch_size', batch_size, batch_help),
          flags.DEFINE_integer('steps', steps, 'Timed steps (after warm-up).'),
          flags.DEFINE_integer('warmup', warmup, 'Untimed steps first.'),
          flags.DEFINE_integer('threads', None, 'torch threads; default: the core count.'),
          flags.DEFINE_string('output', None, 'Write the results as JSON here.'),
          flags.DEFINE_boolean(
              'passive_wait', False, 'Set OMP_WAIT_POLICY=PASSIVE before torch starts: on a '
              'CPU shared with other jobs, OpenMP threads that spin at barriers can make steps '
              '~10x slower.'))
