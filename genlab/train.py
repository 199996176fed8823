"""The one training loop: init or restore, step, log, evaluate, checkpoint; and eval/sample.

The loop knows nothing about objectives: it calls the `Method` of `config.method`
(genlab/methods/__init__.py). Every random draw derives from `fold_in(key(seed), step)`, and
the data iterator's position is saved with the state, so a run resumed from any checkpoint
ends bit-identical to an uninterrupted one.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from tqdm import tqdm

from genlab import checkpoint as checkpoint_lib
from genlab import data as data_lib
from genlab import files
from genlab import methods
from genlab import parallel
from genlab import run_config
from genlab import viz
from genlab import writers
from genlab.errors import UserError
from genlab.metrics import sample_metrics as sample_metrics_lib

# Purpose tags folded into the per-step key, so that draws for different purposes never
# coincide with a training step's draws.
_EVAL_TAG, _VIZ_TAG, _SAMPLE_TAG, _METRIC_TAG, _ANALYSIS_TAG = ((1 << 28) + i for i in range(5))


class TrainingDiverged(UserError):
  """A logged metric became NaN or Inf."""


class _Run:
  """Everything the three modes share: the method, the mesh and the compiled functions."""

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.config = config
    self.workdir = workdir
    self.data_info = data_lib.get_info(config)
    data_lib.check_vocabulary(self.data_info, workdir)
    self.method = methods.get(config.method).make(config, self.data_info)
    self.mesh = parallel.make_mesh()
    self.replicated = parallel.replicated(self.mesh)
    self.sharded = parallel.data_sharded(self.mesh)
    self.base_key = jax.random.key(config.seed)
    self.eval_batch_size = config.get('eval', {}).get('batch_size', config.batch_size)
    parallel.check_batch_size(config.batch_size, self.mesh)
    parallel.check_batch_size(self.eval_batch_size, self.mesh, 'eval.batch_size')
    self.sample_metrics = sample_metrics_lib.make(config, self.data_info)

  # -- state -----------------------------------------------------------------------------
  def abstract_state(self):
    shapes = jax.eval_shape(self.method.init, self.base_key)
    return jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=self.replicated), shapes)

  def init_state(self):
    return jax.jit(self.method.init, out_shardings=self.replicated)(self.base_key)

  # -- compiled steps --------------------------------------------------------------------
  @functools.cached_property
  def train_step(self):
    def step(state, batch):
      key = jax.random.fold_in(self.base_key, state.step)
      return self.method.train_step(state, batch, key)
    return jax.jit(step, in_shardings=(self.replicated, self.sharded),
                   out_shardings=(self.replicated, self.replicated), donate_argnums=0)

  def _compiled_eval(self, fn):
    def step(state, batch, index):
      key = jax.random.fold_in(jax.random.fold_in(self.base_key, _EVAL_TAG), index)
      sums = dict(fn(state, batch, key))
      sums.setdefault('_count', jnp.sum(batch['mask']))
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

  def analysis(self, state, step: int, writer: writers.Writer) -> dict[str, float]:
    """The method's host-side analysis of the whole splits; pictures -> analysis/<name>.png."""
    if self.method.analyze is None:
      return {}
    key = jax.random.fold_in(self.base_key, _ANALYSIS_TAG)
    metrics, pictures = self.method.analyze(
        state, key, lambda role: data_lib.split_arrays(self.config, role))
    writer.images(step, pictures, folder='analysis', stamp=False)
    return {k: float(v) for k, v in metrics.items()}

  def test_results(self, state, step: int, extra: dict, writer: writers.Writer) -> dict:
    metrics = self.evaluate(state, self.config.data.test_split, self.test_step)
    metrics.update(self.sample_quality(state, 'test'))
    metrics.update(self.analysis(state, step, writer))
    if self.sample_metrics is not None and self.sample_metrics.test_names:
      extra = dict(extra, reference={'real_vs_real': self.sample_metrics.reference(),
                                     'note': 'the test metrics with real training images in '
                                             'place of samples'})
    results = {
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
    if jax.process_index() == 0:
      files.write_json(os.path.join(self.workdir, 'results.json'), results)
    return results


def _check_finite(step0: int, history: list[dict]) -> None:
  for offset, metrics in enumerate(history):
    for name, value in metrics.items():
      if not np.isfinite(value):
        raise TrainingDiverged(
            f'Training diverged: metric {name!r} is {value} at step {step0 + offset + 1}. '
            'Lower the learning rate or enable gradient clipping; checkpoints before this '
            'step are kept.')


def _restore_or_init(run: _Run, ckpt: checkpoint_lib.Checkpointer, *, require: bool):
  restored = ckpt.restore_latest(run.abstract_state())
  if restored is None:
    if require:
      raise UserError(f'No checkpoint in {run.workdir}/checkpoints: train first with the same '
                      '--config and --workdir.')
    return run.init_state(), None
  state, data_state, step = restored
  logging.warning('Resuming from step %d in %s.', step, ckpt.directory)
  return state, data_state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> Optional[dict]:
  """Trains (resuming from `workdir` when it has checkpoints), then evaluates on test.

  Returns the results dict, or None when stopped early by SIGTERM (after a checkpoint).
  """
  run = _Run(config, workdir)
  run_config.check_and_save(config, workdir, run.method, make_method=_make_method)
  if jax.process_index() == 0:
    data_lib.save_vocabulary(run.data_info, workdir)
  if run.sample_metrics is not None:
    run.sample_metrics.prepare()  # a missing classifier is trained (or fails) before training
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.max_checkpoints_to_keep)
  writer = writers.Writer(workdir)
  try:
    return _train_loop(run, ckpt, writer)
  finally:
    ckpt.wait()
    ckpt.close()
    writer.close()


def train_or_skip(config: ml_collections.ConfigDict, workdir: str
                  ) -> tuple[Optional[dict], Optional[str]]:
  """For scripts that run many configs: (results, None), or (None, why) when the config's
  data set is not available here or SIGTERM stopped the run (re-running resumes it)."""
  try:
    data_lib.get_info(config)
  except UserError as e:
    return None, str(e)
  results = train_and_evaluate(config, workdir)
  if results is None:
    return None, 'stopped by SIGTERM; re-run to resume'
  return results, None


def _make_method(config):
  return methods.get(config.method).make(config, data_lib.get_info(config))


def _train_loop(run: _Run, ckpt, writer) -> Optional[dict]:
  config = run.config
  state, data_state = _restore_or_init(run, ckpt, require=False)
  train_iter = data_lib.train_iterator(
      config, process_index=jax.process_index(), process_count=jax.process_count())
  train_seconds = 0.0
  if data_state is not None:
    train_iter.set_state(data_state['iterator'])
    train_seconds = data_state['train_seconds']
  step = int(parallel.to_host(state.step))
  total = config.num_train_steps
  writer.forget_after(step)

  stop = {'sigterm': False}
  previous_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(sigterm=True))

  def save(step, force=False):
    ckpt.save(step, state, {'iterator': train_iter.get_state(),
                            'train_seconds': train_seconds}, force=force)

  progress = tqdm(total=total, initial=step, desc='train', unit='step', dynamic_ncols=True,
                  disable=jax.process_index() != 0, mininterval=1.0)
  history, logged_at, logged_time = [], step, time.time()
  try:
    while step < total:
      t0 = time.time()
      batch = parallel.to_global(next(train_iter), run.mesh)
      state, metrics = run.train_step(state, batch)
      history.append(metrics)
      step += 1
      progress.update(1)

      if step % config.log_every_steps == 0 or step == total:
        history = parallel.to_host(history)
        _check_finite(step - len(history), history)
        means = {k: float(np.mean([h[k] for h in history])) for k in history[0]}
        now = time.time()
        means['steps_per_sec'] = (step - logged_at) / max(now - logged_time, 1e-9)
        writer.scalars(step, 'train', means)
        progress.set_postfix(loss=f"{means['loss']:.3f}")
        history, logged_at, logged_time = [], step, now
      train_seconds += time.time() - t0

      if step % config.eval_every_steps == 0 or step == total:
        metrics = run.evaluate(state, config.data.eval_split, run.eval_step)
        metrics.update(run.sample_quality(state, 'eval'))
        writer.scalars(step, 'eval', metrics)
        writer.visuals(step, run.visuals(state))
        writer.flush()
      if step % config.checkpoint_every_steps == 0 or step == total:
        save(step)
      if stop['sigterm']:
        logging.warning('SIGTERM: saving step %d and stopping.', step)
        save(step, force=True)
        return None
  finally:
    progress.close()
    signal.signal(signal.SIGTERM, previous_handler)

  ckpt.wait()
  return run.test_results(state, step, {
      'train_seconds': train_seconds,
      'steps_per_sec': step / max(train_seconds, 1e-9),
      'num_train_steps': total,
  }, writer=writer)


def restore(config: ml_collections.ConfigDict, workdir: str):
  """(run, state, data_state) of the latest good checkpoint in `workdir`; UserError if none."""
  run = _Run(config, workdir)
  run_config.check_compatible(config, workdir, run.method, make_method=_make_method)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=config.max_checkpoints_to_keep)
  try:
    state, data_state = _restore_or_init(run, ckpt, require=True)
  finally:
    ckpt.close()
  return run, state, data_state


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates the latest checkpoint on the test split and writes results.json."""
  run, state, data_state = restore(config, workdir)
  step = int(parallel.to_host(state.step))
  writer = writers.Writer(workdir)
  try:
    return run.test_results(state, step, {'train_seconds': data_state['train_seconds']},
                            writer)
  finally:
    writer.close()


def sample(config: ml_collections.ConfigDict, workdir: str, num_samples: int,
           output: str, chunk: int = 1000, text_options: Optional[dict] = None) -> str:
  """Writes `num_samples` samples of the latest checkpoint to `output` (.npz, key 'samples').

  The same checkpoint and config.seed give the same file. `text_options` (prompt,
  temperature, length, top_k, top_p; None = the config's) are for language models only.
  """
  if num_samples <= 0:
    raise UserError(f'--num_samples={num_samples}: give a positive number of samples.')
  text_options = {k: v for k, v in (text_options or {}).items() if v is not None}
  run, state, _ = restore(config, workdir)
  if run.method.generate_text is not None:
    return _write_texts(run, state, num_samples, output, text_options)
  if text_options:
    raise UserError(f'--{"/--".join(sorted(text_options))} apply to language models only; '
                    f'{config.method!r} takes --num_samples and --output.')
  if run.method.sample is None and run.method.reconstruct is not None:
    return _write_reconstructions(run, state, num_samples, output)
  samples = run.draw(state, jax.random.fold_in(run.base_key, _SAMPLE_TAG), num_samples, chunk)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    np.savez_compressed(output, samples=samples, step=int(parallel.to_host(state.step)),
                        seed=config.seed)
  return output


def _write_texts(run: _Run, state, num: int, output: str, options: dict) -> str:
  """--mode=sample of a language model: `num` texts -> `output` (.npz, 'samples' a list of
  strings, with the sampling settings) and the same texts as a .txt file beside it."""
  options.setdefault('temperature', 1.0)
  key = jax.random.fold_in(run.base_key, _SAMPLE_TAG)
  texts = run.method.generate_text(state, key, num, **options)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    np.savez_compressed(output, samples=np.array(texts), step=int(parallel.to_host(state.step)),
                        seed=run.config.seed, **{k: np.array(v) for k, v in options.items()})
    with open(os.path.splitext(output)[0] + '.txt', 'w') as f:
      for i, text in enumerate(texts):
        f.write(f'=== sample {i} ({", ".join(f"{k}={v!r}" for k, v in options.items())})\n'
                f'{text}\n\n')
  return output


def _write_reconstructions(run: _Run, state, num_images: int, output: str) -> str:
  """--mode=sample of a method that reconstructs but does not generate (an autoencoder).

  Writes the outputs for the first `num_images` test images to `output` under 'samples'
  (with 'inputs', 'clean' and 'labels'), and a PNG of rows input | output | clean beside it.
  """
  config = run.config
  print(f'genlab: {config.method!r} does not generate samples: writing its reconstructions '
        f'of the first {num_images} {config.data.test_split!r} images instead (for a '
        'denoising autoencoder, the denoised noisy inputs).', file=sys.stderr)
  def reconstruct(state, batch, key):  # the batch comes back whole: rows of every process
    return dict(run.method.reconstruct(state, batch, key), clean=batch['image'],
                label=batch['label'], mask=batch['mask'])
  step_fn = jax.jit(reconstruct, in_shardings=(run.replicated, run.sharded, None),
                    out_shardings=run.replicated)
  parts, seen = [], 0
  for index, batch in enumerate(data_lib.eval_batches(
      config, config.data.test_split, run.eval_batch_size, process_index=jax.process_index(),
      process_count=jax.process_count())):
    key = jax.random.fold_in(jax.random.fold_in(run.base_key, _SAMPLE_TAG), index)
    out = parallel.to_host(step_fn(state, parallel.to_global(batch, run.mesh), key))
    real = out['mask'] > 0
    parts.append({'inputs': out['input'][real], 'samples': out['output'][real],
                  'clean': out['clean'][real], 'labels': out['label'][real]})
    seen += int(real.sum())
    if seen >= num_images:
      break
  arrays = {k: np.concatenate([p[k] for p in parts])[:num_images] for k in parts[0]}
  if seen < num_images:
    print(f'genlab: the test split has {seen} images; wrote all of them.', file=sys.stderr)
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    np.savez_compressed(output, kind='reconstructions', step=int(parallel.to_host(state.step)),
                        seed=config.seed, **{k: v.astype(np.float32) if k != 'labels' else v
                                             for k, v in arrays.items()})
    triplets = np.stack([arrays['inputs'], arrays['samples'], arrays['clean']], axis=1)[:32]
    viz.save_png(os.path.splitext(output)[0] + '.png',  # 4 (input, output, clean) per row
                 viz.image_grid(triplets.reshape(-1, *triplets.shape[2:]), ncols=12))
  return output
