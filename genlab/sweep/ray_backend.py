"""The Ray backend: every trial a Ray Tune trial, on this machine or on a Ray cluster.

Each Tune trial runs the same genlab process as the local backend (`python run.py ...` with
its own --workdir, so checkpoints, exact resume and results.json are unchanged) on whichever
node Ray places it, with `cpus_per_trial` CPUs and `gpus_per_trial` GPUs reserved: Ray sets
CUDA_VISIBLE_DEVICES for it, and a fractional GPU also caps JAX's share of that GPU's memory
(XLA_PYTHON_CLIENT_MEM_FRACTION). Every node must see the repository and the sweep's workdir
at the same paths (shared storage). The trial reports each validation evaluation of its
metrics.jsonl to Tune, so ASHA (Li et al. 2020, "A system for massively parallel
hyperparameter tuning") can stop the worst trials early on `eval/<metric>`; a stopped trial is
recorded as stopped. When Tune ends a trial (ASHA, or Ctrl-C of the sweep), Ray kills its
processes: the genlab run keeps its last periodic checkpoint, and an interrupted trial resumes
from there exactly, as after `kill -9`.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time

from genlab.errors import UserError
from genlab.sweep import trials as trials_lib

REPO = os.path.dirname(trials_lib.RUN_PY)


def check_address(address: str, timeout: float = 5.0) -> None:
  """A Ray address HOST:PORT that does not answer is a UserError (ray.init would hang)."""
  host, sep, port = address.rpartition(':')
  if not sep or not port.isdigit():
    raise UserError(f'--ray_address={address!r}: give HOST:PORT of a Ray head (the port of '
                    '`ray start --head --port=PORT`, 6379 by default).')
  try:
    socket.create_connection((host, int(port)), timeout=timeout).close()
  except OSError as e:
    raise UserError(f'The Ray head at {address} does not answer ({e.strerror or e}): start one '
                    f'with `ray start --head --port={port}` or check --ray_address.') from None


def _trial(config) -> None:
  """Tune's function for one trial (runs on a Ray worker): the genlab process, its eval rows
  reported as they appear."""
  from ray import tune  # pylint: disable=g-import-not-at-top
  job = config['job']
  cmd = [sys.executable, *job['command'][1:]]  # this node's interpreter
  start, last_step = time.time(), -1
  proc = trials_lib.launch(cmd, job['workdir'], env=job['env'])

  def report_new():
    nonlocal last_step
    for row in trials_lib.eval_rows(job['workdir']):
      # The last evaluation is not reported: a trial that got there finishes on its own.
      if last_step < row['step'] < job['max_steps']:
        tune.report({'step': row['step'], **{f'eval/{k}': v for k, v in row.items()
                                             if k not in ('step', 'split')}})
        last_step = row['step']

  while proc.poll() is None:
    report_new()
    time.sleep(1.0)
  report_new()
  status = trials_lib.record_exit(job['workdir'], proc.returncode, time.time() - start)
  if status['status'] == 'failed':
    raise RuntimeError(status['error'])


def _recording_asha(**kwargs):
  """Tune's ASHA scheduler, which also records each trial it stops (in the driver, the moment
  it decides), so that the sweep never runs that trial again."""
  from ray.tune.schedulers import ASHAScheduler, TrialScheduler  # pylint: disable=g-import-not-at-top

  class RecordingASHA(ASHAScheduler):

    def on_trial_result(self, tune_controller, trial, result):
      decision = super().on_trial_result(tune_controller, trial, result)
      if decision == TrialScheduler.STOP:
        trials_lib.record_exit(trial.config['job']['workdir'], 0, 0.0, ended_by='scheduler')
      return decision

  return RecordingASHA(time_attr='step', **kwargs)


def run(jobs: list[dict], workdir: str, opts, *, metric, goal, eval_every: int,
        on_exit) -> bool:
  """Runs the jobs ({'name', 'workdir', 'command', 'max_steps'}) as one Tune experiment in
  workdir/ray/; on_exit(job, status) for each after. True if some did not finish (Ctrl-C)."""
  os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')
  import ray  # pylint: disable=g-import-not-at-top
  from ray import tune  # pylint: disable=g-import-not-at-top

  scheduler, tune_metric = None, None
  if opts.scheduler == 'asha':
    if not metric:
      raise UserError('ASHA early stopping needs a metric: give --sweep_metric (e.g. test/nll; '
                      'trials are compared on its validation value, eval/nll).')
    tune_metric = 'eval/' + metric.split('/', 1)[1] if metric.startswith('test/') else metric
    scheduler = _recording_asha(max_t=max(j['max_steps'] for j in jobs),
                                grace_period=opts.asha_grace_steps or eval_every,
                                reduction_factor=opts.asha_reduction_factor)
  env = {}
  if 0 < opts.gpus_per_trial < 1:
    env['XLA_PYTHON_CLIENT_MEM_FRACTION'] = f'{0.9 * opts.gpus_per_trial:.2f}'
  runtime_env = {'env_vars': {'PYTHONPATH': os.pathsep.join(
      filter(None, [REPO, os.environ.get('PYTHONPATH')]))}}
  init = dict(address=opts.ray_address, runtime_env=runtime_env, log_to_driver=False,
              logging_level='WARNING')
  if not opts.ray_address:
    init.update(include_dashboard=False)
  ray.init(**init)
  # A failed trial is reported by the sweep in one line; Tune would add its traceback.
  logging.getLogger('ray.tune').setLevel(logging.CRITICAL)
  try:
    tuner = tune.Tuner(
        tune.with_resources(_trial, {'cpu': opts.cpus_per_trial, 'gpu': opts.gpus_per_trial}),
        param_space={'job': tune.grid_search([dict(j, env=env) for j in jobs])},
        tune_config=tune.TuneConfig(
            metric=tune_metric, mode=goal if scheduler else None, scheduler=scheduler,
            max_concurrent_trials=opts.parallel or None,
            trial_name_creator=lambda t: t.config['job']['name'],
            trial_dirname_creator=lambda t: t.config['job']['name']),
        run_config=tune.RunConfig(
            storage_path=os.path.join(workdir, 'ray'), name=time.strftime('run-%Y%m%d-%H%M%S'),
            verbose=0, failure_config=tune.FailureConfig(max_failures=0)))
    tuner.fit()  # Ctrl-C: Tune ends every trial and returns
  finally:
    ray.shutdown()
  unfinished = False
  for job in jobs:
    status = trials_lib.status(job['workdir'])
    unfinished |= status['status'] in ('pending', 'interrupted')
    on_exit(job, status)
  return unfinished
