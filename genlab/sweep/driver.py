"""`python run.py --config FILE --sweep --workdir DIR`: every trial of the config's sweep, in
DIR/<trial name>, on this machine or on a Ray cluster, resumable; then the report.

DIR/sweep.json records the config, the base overrides (the command line's --config.KEY=V)
and every trial ever run in DIR. A re-run of the same command skips finished trials, resumes
interrupted ones from their checkpoints, reports failed ones (--sweep_retry_failed runs them
again) and never reruns one that early stopping ended. A different config or different base
overrides in the same DIR stop with an error: they would mix two experiments in one table.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Optional

from genlab import files
from genlab.errors import UserError
from genlab.sweep import report as report_lib
from genlab.sweep import spec
from genlab.sweep import trials as trials_lib

STATE_FILE = 'sweep.json'


@dataclasses.dataclass
class Options:
  parallel: int = 1
  grid: tuple = ()
  retry_failed: bool = False
  metric: Optional[str] = None
  goal: Optional[str] = None
  backend: str = 'local'
  ray_address: Optional[str] = None
  cpus_per_trial: float = 1.0
  gpus_per_trial: float = 0.0
  scheduler: str = 'fifo'
  asha_grace_steps: int = 0          # 0 = the config's eval_every_steps
  asha_reduction_factor: int = 2


def _metric_and_goal(module, opts: Options) -> tuple[Optional[str], str]:
  metric = opts.metric or getattr(module, 'SWEEP_METRIC', None)
  goal = opts.goal or getattr(module, 'SWEEP_GOAL', 'min')
  if goal not in report_lib.GOALS:
    raise UserError(f'--sweep_goal={goal!r}: use min or max.')
  return metric, goal


def _load_state(workdir: str, config_arg: str, base: dict) -> dict:
  state = files.read_json(os.path.join(workdir, STATE_FILE))
  if state is None:
    return {'config': config_arg, 'base_overrides': base, 'trials': []}
  if state['config'] != config_arg or state['base_overrides'] != _as_json(base):
    raise UserError(
        f'{workdir} holds a sweep of --config {state["config"]} with base overrides '
        f'{state["base_overrides"]}, not {config_arg} with {base}: use another --workdir, or '
        'the same flags to resume it.')
  return state


def _as_json(obj):
  """`obj` as sweep.json holds it (tuples become lists), to compare with what it holds."""
  return json.loads(json.dumps(obj))


def _merge_trials(state: dict, trials: list[spec.Trial]) -> None:
  state['keys'] = list(dict.fromkeys([*state.get('keys', []), *spec.swept_keys(trials)]))
  known = {t['name']: t['overrides'] for t in state['trials']}
  for t in trials:
    if t.name in known and known[t.name] != _as_json(t.overrides):
      raise UserError(f'Trial {t.name!r} in this workdir ran with {known[t.name]}, not '
                      f'{t.overrides}: use another --workdir for this sweep.')
    if t.name not in known:
      state['trials'].append({'name': t.name, 'overrides': t.overrides})


def run(config, config_arg: str, base_overrides: dict, workdir: str, opts: Options) -> None:
  """Runs the sweep (see the module docstring); raises UserError for bad input."""
  if opts.scheduler == 'asha' and opts.backend != 'ray':
    raise UserError('--sweep_scheduler=asha (early stopping) runs on Ray: add '
                    '--sweep_backend=ray (with --ray_address=HOST:PORT for a cluster, or none '
                    'for a Ray instance on this machine).')
  if opts.backend == 'ray' and opts.ray_address:
    from genlab.sweep import ray_backend  # pylint: disable=g-import-not-at-top
    ray_backend.check_address(opts.ray_address)
  module = spec.config_module(config_arg)
  metric, goal = _metric_and_goal(module, opts)
  trials = spec.trials_from(module, opts.grid, config)
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  state = _load_state(workdir, config_arg, base_overrides)
  _merge_trials(state, trials)
  files.write_json(os.path.join(workdir, STATE_FILE), state)

  jobs, to_run, counts = [], [], {}
  for t in trials:
    trial_dir = os.path.join(workdir, t.name)
    st = trials_lib.status(trial_dir)['status']
    counts[st] = counts.get(st, 0) + 1
    if st == 'failed' and opts.retry_failed:
      trials_lib.forget(trial_dir)
      st = 'retry'
    if st in ('pending', 'interrupted', 'retry'):
      to_run.append(t)
      jobs.append({'name': t.name, 'workdir': trial_dir,
                   'max_steps': int(t.config.num_train_steps),
                   'command': trials_lib.command(_absolute(config_arg), trial_dir,
                                                 {**base_overrides, **t.overrides})})
  print(f'sweep: {len(trials)} trials in {workdir}: ' +
        ', '.join(f'{n} {s}' for s, n in sorted(counts.items())) +
        f'; running {len(jobs)}',
        file=sys.stderr)
  if metric and counts.get('done'):  # a misspelt metric stops before hours of trials
    report_lib.rank(report_lib.collect(workdir, state['trials']), metric, goal)

  start, stopped_by = time.time(), None
  if jobs:
    _prepare_data(to_run)
    if opts.backend == 'local':
      from genlab.sweep import local  # pylint: disable=g-import-not-at-top
      stopped_by = local.run(jobs, parallel=opts.parallel or 1,
                             gpus_per_trial=int(opts.gpus_per_trial), on_exit=_print_exit)
    else:
      from genlab.sweep import ray_backend  # pylint: disable=g-import-not-at-top
      if ray_backend.run(jobs, workdir, opts, metric=metric, goal=goal,
                         eval_every=int(config.eval_every_steps), on_exit=_print_exit):
        stopped_by = 'interrupted'
    print(f'sweep: ran for {time.time() - start:.1f} s', file=sys.stderr)
  failed = [t for t in state['trials'] if trials_lib.status(
      os.path.join(workdir, t['name']))['status'] == 'failed']
  write_report(workdir, metric, goal, strict=not failed and stopped_by is None)
  if stopped_by is not None:
    print('sweep: stopped; re-run the same command to resume (finished trials are kept).',
          file=sys.stderr)
    sys.exit(0)
  if failed:
    raise UserError(f'{len(failed)} of {len(state["trials"])} trials failed (errors in '
                    f'{workdir}/sweep.md and each trial\'s sweep.log); fix the cause and re-run '
                    'with --sweep_retry_failed (finished trials are not rerun).')


def _prepare_data(trials: list[spec.Trial]) -> None:
  """Prepares each data set once, before trials that run at the same time would race to do it
  (and a missing one stops the sweep before any trial starts)."""
  from genlab import data as data_lib  # pylint: disable=g-import-not-at-top
  seen = set()
  for t in trials:
    if (t.config.dataset, t.config.data_dir) not in seen:
      seen.add((t.config.dataset, t.config.data_dir))
      data_lib.get_info(t.config)


def _absolute(config_arg: str) -> str:
  """The config argument with an absolute path (a trial may run in another directory)."""
  path, sep, arg = config_arg.partition(':')
  return os.path.abspath(path) + sep + arg


def _print_exit(job: dict, status: dict) -> None:
  extra = f': {status["error"]}' if status.get('error') else ''
  print(f'sweep: {status["status"]} {job["name"]} ({status.get("seconds", 0):.0f} s){extra}',
        file=sys.stderr)


def write_report(workdir: str, metric: Optional[str], goal: str, *,
                 strict: bool = True) -> dict[str, str]:
  """Writes sweep.csv, sweep.md and sweep.png from the trials recorded in workdir. Unless
  `strict`, a metric that no trial reports yet leaves the table unranked."""
  state = files.read_json(os.path.join(workdir, STATE_FILE))
  if state is None:
    raise UserError(f'{workdir} holds no sweep ({STATE_FILE} is missing): run one with --sweep '
                    'and the same --workdir first.')
  rows = report_lib.collect(workdir, state['trials'])
  if not strict and not any(metric in r['metrics'] for r in rows):
    metric = None
  paths = report_lib.write(workdir, rows, state['keys'], metric, goal)
  with open(paths['md']) as f:
    print(f.read())
  if metric is None:
    print(f'sweep: no --sweep_metric (nor SWEEP_METRIC in the config), so trials are not ranked; '
          f'they report {report_lib.metric_names(rows)}.', file=sys.stderr)
  print('sweep: wrote ' + ', '.join(paths.values()), file=sys.stderr)
  return paths


def report(config_arg: str, workdir: str, opts: Options) -> dict[str, str]:
  """--mode=sweep_report: the report of what the sweep in `workdir` has so far."""
  metric, goal = _metric_and_goal(spec.config_module(config_arg), opts)
  return write_report(os.path.abspath(workdir), metric, goal)
