"""The one training loop: init or restore, step, log, evaluate, checkpoint; and --mode=eval.

The loop knows nothing about objectives: it calls the `Method` of `config.method`
(genlab/methods/__init__.py). Every random draw derives from `fold_in(key(seed), step)`, and
the data iterator's position is saved with the state, so a run resumed from any checkpoint
ends bit-identical to an uninterrupted one.

The run directory never lies (README, "The run directory"): every config value is checked and
the data opened before anything is written; one process at a time writes a workdir (its
lock); config.json is written with the first checkpoint of the config it describes; no
checkpoint is saved from parameters that diverged; results.json is the record of the final
checkpoint, which --mode=eval refreshes but never replaces with another step's numbers; and
SIGINT or SIGTERM stop at the end of a step, after a checkpoint.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from genlab import checkpoint as checkpoint_lib
from genlab import data as data_lib
from genlab import files
from genlab import log
from genlab import methods
from genlab import parallel
from genlab import run_config
from genlab import signals
from genlab import viz
from genlab import workdir as workdir_lib
from genlab import writers
from genlab.errors import UserError
from genlab.metrics import sample_metrics as sample_metrics_lib

# Purpose tags folded into the per-step key, so that draws for different purposes never
# coincide with a training step's draws.
_EVAL_TAG, _VIZ_TAG, SAMPLE_TAG, _METRIC_TAG, _ANALYSIS_TAG = ((1 << 28) + i for i in range(5))


RESULTS_FILE = 'results.json'
EVALS_DIR = 'evals'  # --mode=eval records of other steps or configs: evals/step_<N>/
# Fields of results.json that only training knows; --mode=eval keeps them.
_TRAINING_FIELDS = ('train_seconds', 'steps_per_sec', 'num_train_steps')


class TrainingDiverged(UserError):
  """A logged metric became NaN or Inf (and the divergence policy could not recover)."""


class _Run:
  """Everything the three modes share: the method, the mesh and the compiled functions."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: Optional[str]):
    """Checks everything about `config` that can be checked without training; writes nothing
    in `workdir` (it may prepare a data set in the TFDS data dir)."""
    self.config = config
    self.workdir = workdir
    module = methods.check_config(config)
    self.data_info = data_lib.get_info(config)
    data_lib.check_vocabulary(self.data_info, workdir)
    self.method = module.make(config, self.data_info)
    self.mesh = parallel.make_mesh()
    self.replicated = parallel.replicated(self.mesh)
    self.sharded = parallel.data_sharded(self.mesh)
    self.base_key = jax.random.key(config.seed)
    self.eval_batch_size = config.get('eval', {}).get('batch_size', config.get('batch_size'))
    if not data_lib.is_data_free(config):  # Data-free batches are {}: nothing to shard.
      parallel.check_batch_size(config.batch_size, self.mesh)
      parallel.check_batch_size(self.eval_batch_size, self.mesh, 'eval.batch_size')
    self.sample_metrics = sample_metrics_lib.make(config, self.data_info)
    self._train_steps = {}

  # -- state -----------------------------------------------------------------------------
  def abstract_state(self):
    shapes = jax.eval_shape(self.method.init, self.base_key)
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.replicated), shapes)

  def init_state(self):
    return jax.jit(self.method.init, out_shardings=self.replicated)(self.base_key)

  # -- compiled steps --------------------------------------------------------------------
  @property
  def train_step(self):
    """The compiled train step of a method without phases."""
    if self.method.phase is not None:
      raise ValueError(f'method {self.config.method!r} has phases: use train_step_at(step).')
    return self.train_step_at(0)

  def train_step_at(self, step: int):
    """The compiled train step for step number `step`: one per label of Method.phase (one in
    all for a method without phases)."""
    phase = self.method.phase(step) if self.method.phase is not None else None
    if phase not in self._train_steps:
      def fn(state, batch):
        key = jax.random.fold_in(self.base_key, state.step)
        if phase is None:
          return self.method.train_step(state, batch, key)
        return self.method.train_step(state, batch, key, phase=phase)
      self._train_steps[phase] = jax.jit(
          fn, in_shardings=(self.replicated, self.sharded),
          out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    return self._train_steps[phase]

  def _compiled_eval(self, fn):
    def step(state, batch, index):
      key = jax.random.fold_in(jax.random.fold_in(self.base_key, _EVAL_TAG), index)
      sums = dict(fn(state, batch, key))
      # A batch without a mask (data-free methods' {}) counts as one example.
      sums.setdefault('_count', jnp.sum(batch['mask']) if 'mask' in batch else jnp.float32(1))
      return sums
    return jax.jit(step, in_shardings=(self.replicated, self.sharded, None),
                   out_shardings=self.replicated)

  @functools.cached_property
  def eval_step(self):
    return self._compiled_eval(self.method.eval_step)

  @functools.cached_property
  def test_step(self):
    return self._compiled_eval(self.method.test_step or self.method.eval_step)

  # -- sampling --------------------------------------------------------------------------
  @functools.cached_property
  def _sample_fn(self):
    if self.method.sample is None:
      raise UserError(f'Method {self.config.method!r} does not generate samples: --mode=sample '
                      'and sample metrics need a generative model (vae, gan, ...).')
    return jax.jit(self.method.sample, static_argnums=2, out_shardings=self.replicated)

  def draw(self, state, key, num_samples: int, chunk: int = 1000) -> np.ndarray:
    """`num_samples` float32 samples on the host; chunk i uses fold_in(key, i)."""
    parts = [parallel.to_host(self._sample_fn(state, jax.random.fold_in(key, i), min(chunk, n)))
             for i, n in enumerate(range(num_samples, 0, -chunk))]
    return np.concatenate(parts)[:num_samples].astype(np.float32)

  def sample_quality(self, state, role: str) -> dict[str, float]:
    """Sample metrics against split `role`, from the same noise at every eval."""
    if self.sample_metrics is None:
      return {}
    key = jax.random.fold_in(self.base_key, _METRIC_TAG)
    return self.sample_metrics.evaluate(lambda n: self.draw(state, key, n), role)

  # -- evaluation ------------------------------------------------------------------------
  def evaluate(self, state, split: str, step_fn) -> dict[str, float]:
    """Means over every real example of `split` of the sums that `step_fn` returns."""
    totals = None
    for index, batch in enumerate(data_lib.eval_batches(
        self.config, split, self.eval_batch_size, process_index=jax.process_index(),
        process_count=jax.process_count())):
      batch = parallel.to_global(batch, self.mesh)
      sums = step_fn(state, batch, index)
      totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    totals = parallel.to_host(totals)
    count = float(totals.pop('_count'))
    means = {k: float(v) / count for k, v in totals.items()}
    return self.method.summarize(means) if self.method.summarize else means

  def visuals(self, state) -> dict:
    if self.method.visualize is None:
      return {}
    # Every process computes the same pictures from the same (whole) first eval batch, since
    # the jitted pieces of `visualize` run over all processes' devices.
    batch = next(iter(data_lib.eval_batches(
        self.config, self.config.data.eval_split, self.eval_batch_size)))
    key = jax.random.fold_in(self.base_key, _VIZ_TAG)
    return self.method.visualize(state, key, batch)

  @functools.cached_property
  def poison(self):
    """debug.nan_at_step: every floating parameter and metric -> NaN (a drill's divergence)."""
    def nan(x):
      return x * jnp.nan if jnp.issubdtype(x.dtype, jnp.floating) else x
    return jax.jit(lambda state, metrics: (jax.tree.map(nan, state), jax.tree.map(nan, metrics)),
                   donate_argnums=0)

  def open_splits(self) -> None:
    """Reads the eval and test splits once now, so that a damaged file stops the run before it
    writes anything rather than at its first evaluation (the decoded splits are cached)."""
    for split in {self.config.data.eval_split, self.config.data.test_split}:
      next(iter(data_lib.eval_batches(self.config, split, self.eval_batch_size,
                                      process_index=jax.process_index(),
                                      process_count=jax.process_count())), None)

  def analysis(self, state, step: int, writer: writers.Writer) -> dict[str, float]:
    """The method's host-side analysis of the whole splits; pictures -> analysis/<name>.png."""
    if self.method.analyze is None:
      return {}
    key = jax.random.fold_in(self.base_key, _ANALYSIS_TAG)
    metrics, pictures = self.method.analyze(
        state, key, lambda role: data_lib.split_arrays(self.config, role))
    writer.images(step, pictures, folder='analysis', stamp=False)
    return {k: float(v) for k, v in metrics.items()}

  def result_images(self, state) -> Optional[np.ndarray]:
    """The method's `result` (the images it optimises) on the host, or None."""
    if self.method.result is None:
      return None
    return np.asarray(parallel.to_host(jax.jit(self.method.result)(state)), np.float32)

  def test_results(self, state, step: int, extra: dict, writer: writers.Writer) -> dict:
    """The final evaluation on the test split, as results.json holds it (not written here),
    and the method's result images as result.png at full resolution."""
    metrics = self.evaluate(state, self.config.data.test_split, self.test_step)
    metrics.update(self.sample_quality(state, 'test'))
    metrics.update(self.analysis(state, step, writer))
    images = self.result_images(state)
    if images is not None:
      writer.images(step, {'result': viz.square_grid(images)}, folder='', stamp=False)
    if self.sample_metrics is not None and self.sample_metrics.test_names:
      extra = dict(extra, reference={'real_vs_real': self.sample_metrics.reference(),
                                     'note': 'the test metrics with real training images in '
                                             'place of samples'})
    return {
        'method': self.config.method,
        'dataset': self.config.dataset,
        'split': self.config.data.test_split,
        'num_examples': self.data_info.num_examples['test'],
        'step': step,
        'metrics': metrics,
        'device_kind': jax.devices()[0].device_kind,
        'device_count': jax.device_count(),
        'process_count': jax.process_count(),
        **extra,
    }


# -- the workdir's lock, for one process or many ------------------------------------------------
@contextlib.contextmanager
def _locked(workdir: str, mode: str):
  """workdir.lock, taken by process 0 for every process of the run (all refuse together)."""
  with contextlib.ExitStack() as stack:
    error = None
    if jax.process_index() == 0:
      try:
        stack.enter_context(workdir_lib.lock(workdir, mode))
      except UserError as e:
        error = str(e)
    if jax.process_count() > 1:
      held = multihost_utils.broadcast_one_to_all(np.int32(error is None))
      if not held and error is None:
        error = f'{workdir} is in use by another run (process 0 could not lock it).'
    if error is not None:
      raise UserError(error)
    yield


# -- divergence --------------------------------------------------------------------------------
def _first_non_finite(history: list) -> Optional[tuple[int, int, str, float]]:
  """(step, batch position, metric, value) of the first non-finite metric in `history`."""
  for step, position, metrics in history:
    for name, value in metrics.items():
      if not np.isfinite(value):
        return step, position, name, float(value)
  return None


def _diverged(bad, policy: str, rollbacks: int) -> TrainingDiverged:
  step, _, name, value = bad
  if policy == 'rollback':
    tried = (f' again after {rollbacks} rollback{"s" * (rollbacks != 1)} (the most '
             'config.divergence.max_rollbacks allows)')
    other = ''
  else:
    tried, other = '', ', or --config.divergence.policy=rollback to skip the batch and go on'
  return TrainingDiverged(
      f'Training diverged: metric {name!r} is {value} at step {step}{tried}. Lower the learning '
      f'rate or enable gradient clipping{other}; the checkpoints before this step are kept.')


# -- training ----------------------------------------------------------------------------------
def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from `workdir` when it has checkpoints), then evaluates on test.

  Returns the results dict (results.json). A workdir whose final checkpoint already has its
  results.json is not evaluated again. Raises signals.Interrupted after saving a checkpoint
  when SIGINT or SIGTERM stops the run, UserError for anything the user can fix (before
  anything is written, wherever it can be checked before).
  """
  workdir_lib.check_writable(workdir)
  run = _Run(config, workdir)
  diffs = run_config.check_compatible(config, workdir, run.method, make_method=_make_method)
  train_iter = data_lib.train_iterator(
      config, process_index=jax.process_index(), process_count=jax.process_count())
  run.open_splits()
  if run.sample_metrics is not None:
    run.sample_metrics.prepare()  # a missing classifier is trained (or fails) before training
  with _locked(workdir, 'train'):
    ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.max_checkpoints_to_keep)
    try:
      return _Training(run, ckpt, train_iter, diffs).execute()
    finally:
      ckpt.wait()
      ckpt.close()


def train_or_skip(config: ml_collections.ConfigDict, workdir: str
                  ) -> tuple[Optional[dict], Optional[str]]:
  """For scripts that run many configs: (results, None), or (None, why) when the config's
  data set is not available here."""
  try:
    data_lib.get_info(config)
  except UserError as e:
    return None, str(e)
  return train_and_evaluate(config, workdir), None


def _make_method(config):
  return methods.get(config.method).make(config, data_lib.get_info(config))


class _Training:
  """One call of train_and_evaluate: the state, the data position and the loop over steps."""

  def __init__(self, run: _Run, ckpt, train_iter, diffs: dict):
    self.run, self.ckpt, self.train_iter, self.diffs = run, ckpt, train_iter, diffs
    self.config = config = run.config
    self.total = config.num_train_steps
    self.policy = config.divergence.policy
    self.poison_at = config.debug.nan_at_step - 1 if config.debug.nan_at_step else None
    self.rollbacks = 0
    self.committed = False  # config.json (and vocab.json) written, with the first checkpoint
    self.writer = None

  # -- state ---------------------------------------------------------------------------------
  def restore(self) -> None:
    """The latest good checkpoint (steps that fail are set aside), else the initial state."""
    restored = self.ckpt.restore_latest(self.run.abstract_state())
    if restored is None:
      self.state, data_state, self.step = self.run.init_state(), {}, 0
    else:
      self.state, data_state, self.step = restored
    self.train_iter.set_state(data_state.get('iterator', {'step': 0}))
    self.train_seconds = data_state.get('train_seconds', 0.0)
    self.skipped = set(data_state.get('skipped_batches', ()))

  def save(self, force: bool = False) -> None:
    if not self.committed:
      run_config.save(self.config, self.run.workdir, self.diffs)
      if jax.process_index() == 0:
        data_lib.save_vocabulary(self.run.data_info, self.run.workdir)
      self.committed = True
    position = self.train_iter.get_state()['step']
    self.ckpt.save(self.step, self.state, {
        'iterator': self.train_iter.get_state(), 'train_seconds': self.train_seconds,
        'skipped_batches': sorted(p for p in self.skipped if p >= position)}, force=force)

  def next_batch(self) -> tuple[int, dict]:
    """(position in the data stream, this process's batch), past the batches skipped after a
    divergence."""
    position = self.train_iter.get_state()['step']
    while position in self.skipped:
      position += 1
    self.train_iter.set_state({'step': position})
    return position, next(self.train_iter)

  # -- the run -------------------------------------------------------------------------------
  def execute(self) -> dict:
    self.restore()
    workdir = self.run.workdir
    if self.step > self.total:
      raise UserError(f'{workdir} holds a checkpoint at step {self.step}, beyond '
                      f'config.num_train_steps={self.total}: give --config.num_train_steps >= '
                      f'{self.step} to continue it, or a new --workdir.')
    if self.step:
      log.info(f'resuming from step {self.step} of {self.total} in {self.ckpt.directory}.')
    if self.step == self.total:
      existing = files.read_json(os.path.join(workdir, RESULTS_FILE))
      if existing is not None and existing.get('step') == self.step:
        log.info(f'nothing to train: step {self.step} is final and {RESULTS_FILE} describes it '
                 '(--mode=eval evaluates it again).')
        return existing
    self.writer = writers.Writer(workdir)
    try:
      self.writer.forget_after(self.step)
      self.loop()
      return self.final_results()
    finally:
      self.writer.close()

  def final_results(self) -> dict:
    self.ckpt.wait()
    try:
      results = self.run.test_results(self.state, self.step, {
          'train_seconds': self.train_seconds,
          'steps_per_sec': self.step / max(self.train_seconds, 1e-9),
          'num_train_steps': self.total,
      }, writer=self.writer)
    except signals.Interrupted as e:
      raise signals.Interrupted(e.signum, f'during the final evaluation; the final checkpoint '
                                f'(step {self.step}) is saved: re-run the same command to '
                                'evaluate it') from None
    if jax.process_index() == 0:
      files.write_json(os.path.join(self.run.workdir, RESULTS_FILE), results)
    return results

  def should_stop(self, sync: bool) -> Optional[int]:
    """The signal all processes agree to stop for: each process checks its own every step,
    a multi-process run agrees at the steps where it syncs anyway (logging, eval, save)."""
    mine = signals.pending()
    if jax.process_count() == 1:
      return mine
    if not sync:
      return None
    signums = multihost_utils.process_allgather(np.int32(mine or 0))
    return int(np.max(signums)) or None

  def loop(self) -> None:
    config, run, writer = self.config, self.run, self.writer
    log_every, eval_every = config.log_every_steps, config.eval_every_steps
    ckpt_every = config.checkpoint_every_steps
    progress = tqdm(total=self.total, initial=self.step, desc='train', unit='step',
                    dynamic_ncols=True, disable=jax.process_index() != 0, mininterval=1.0)
    history, logged_at, logged_time = [], self.step, time.time()
    note = '' if jax.process_count() == 1 else ' at the next step all processes sync'
    try:
      with signals.deferred(note):
        while self.step < self.total:
          t0 = time.time()
          position, batch = self.next_batch()
          self.state, metrics = run.train_step_at(self.step)(
              self.state, parallel.to_global(batch, run.mesh))
          if position == self.poison_at:
            self.state, metrics = run.poison(self.state, metrics)
          self.step += 1
          step = self.step
          history.append((step, position, metrics))
          progress.update(1)
          logging = step % log_every == 0 or step == self.total
          saving = step % ckpt_every == 0 or step == self.total
          evaluating = step % eval_every == 0 or step == self.total
          stop = self.should_stop(logging or saving or evaluating)
          if logging or saving or evaluating or stop:
            # No evaluation or checkpoint of parameters that have diverged.
            history = [(s, p, parallel.to_host(m)) for s, p, m in history]
            bad = _first_non_finite(history)
            if bad is not None:
              self.recover(bad)
              progress.reset(total=self.total)
              progress.update(self.step)
              history, logged_at, logged_time = [], self.step, time.time()
              continue
          if logging:
            means = {k: float(np.mean([m[k] for _, _, m in history])) for k in history[0][2]}
            now = time.time()
            means['steps_per_sec'] = (step - logged_at) / max(now - logged_time, 1e-9)
            writer.scalars(step, 'train', means)
            progress.set_postfix(loss=f"{means['loss']:.3f}")
            history, logged_at, logged_time = [], step, now
          self.train_seconds += time.time() - t0
          if evaluating:
            metrics = run.evaluate(self.state, config.data.eval_split, run.eval_step)
            metrics.update(run.sample_quality(self.state, 'eval'))
            writer.scalars(step, 'eval', metrics)
            writer.visuals(step, run.visuals(self.state))
            writer.flush()
          if saving or stop:
            self.save(force=bool(stop))
          if stop:
            self.ckpt.wait()
            signals.clear()
            raise signals.Interrupted(stop, f'at step {step}, after saving its checkpoint: '
                                      're-run the same command to resume')
    finally:
      progress.close()

  def recover(self, bad) -> None:
    """The divergence policy: stop, or roll back to the last good checkpoint (or the initial
    state) and skip the batch that diverged, at most divergence.max_rollbacks times."""
    limit = self.config.divergence.max_rollbacks
    if self.policy != 'rollback' or self.rollbacks >= limit:
      raise _diverged(bad, self.policy, self.rollbacks)
    self.rollbacks += 1
    step, position, name, value = bad
    self.ckpt.wait()
    self.restore()
    self.skipped.add(position)
    self.writer.forget_after(self.step)
    log.warning(f'metric {name!r} is {value} at step {step}: rolled back to step {self.step} '
                f'and skipping batch {position} of the data stream (rollback {self.rollbacks} '
                f'of at most {limit}).')
    self.writer.scalars(step, 'divergence', {'rolled_back_to': self.step,
                                             'skipped_batch': position})


# -- evaluation and restoring ------------------------------------------------------------------
def restore(config: ml_collections.ConfigDict, workdir: str):
  """(run, state, data_state) of the latest good checkpoint in `workdir`, read-only (unusable
  steps are skipped, not moved, so a run training there is not disturbed); UserError if none."""
  run = _Run(config, workdir)
  run_config.check_compatible(config, workdir, run.method, make_method=_make_method)
  return (run, *_read_latest(run))


def _read_latest(run: _Run):
  ckpt = checkpoint_lib.Checkpointer(run.workdir, read_only=True)
  try:
    restored = ckpt.restore_latest(run.abstract_state())
  finally:
    ckpt.close()
  if restored is None:
    raise UserError(f'No checkpoint in {run.workdir}/checkpoints: train first with the same '
                    '--config and --workdir.')
  state, data_state, _ = restored
  return state, data_state


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates the latest good checkpoint on the test split.

  results.json is refreshed (keeping what only training knows: train_seconds, steps/s) when
  the checkpoint is the final one it describes, under the config that trained it. Any other
  evaluation (an older step because the latest is unusable, an unfinished run, a changed
  config) goes to evals/step_<N>/results.json, and results.json is left as it is.
  """
  workdir_lib.check_writable(workdir)
  run = _Run(config, workdir)
  diffs = run_config.check_compatible(config, workdir, run.method, make_method=_make_method)
  with _locked(workdir, 'eval'):
    state, data_state = _read_latest(run)
    step = int(parallel.to_host(state.step))
    record = files.read_json(os.path.join(workdir, RESULTS_FILE))
    why = None
    if record is not None and record.get('step') != step:
      why = (f'the latest usable checkpoint is step {step}, but {RESULTS_FILE} describes step '
             f'{record.get("step")}')
    elif diffs:
      why = 'the config differs from config.json (' + ', '.join(diffs) + ')'
    elif step != config.num_train_steps:
      why = f'step {step} is not the final step {config.num_train_steps} (the run has not ended)'
    folder = workdir if why is None else os.path.join(workdir, EVALS_DIR, f'step_{step:07d}')
    writer = writers.Writer(folder)
    try:
      results = run.test_results(state, step, {'train_seconds': data_state['train_seconds']},
                                 writer)
    finally:
      writer.close()
    if why is None:
      results.update({k: record[k] for k in _TRAINING_FIELDS if record and k in record})
    else:
      results['config_differences'] = {k: list(v) for k, v in diffs.items()}
    path = os.path.join(folder, RESULTS_FILE)
    if jax.process_index() == 0:
      files.write_json(path, results)
    if why is None:
      log.info(f'wrote {path}.')
    else:
      log.warning(f'{why}: wrote {path}; {RESULTS_FILE} is unchanged.')
    return results
