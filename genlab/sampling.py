"""--mode=sample: what the latest checkpoint of a workdir generates, as an .npz file.

Images for a generative method, texts for a language model, reconstructions of test images
for a method that only reconstructs (an autoencoder). Read-only in the workdir: no lock, and
unusable checkpoints are skipped rather than moved, so it may run beside training. The file
is written atomically, into a directory that must exist.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import jax
import ml_collections
import numpy as np

from genlab import data as data_lib
from genlab import files
from genlab import parallel
from genlab import train
from genlab import viz
from genlab import workdir as workdir_lib
from genlab.errors import UserError


def sample(config: ml_collections.ConfigDict, workdir: str, num_samples: int,
           output: str, chunk: int = 1000, text_options: Optional[dict] = None) -> str:
  """Writes `num_samples` samples of the latest checkpoint to `output` (.npz, key 'samples').

  The same checkpoint and config.seed give the same file. `text_options` (prompt,
  temperature, length, top_k, top_p; None = the config's) are for language models only.
  """
  if num_samples <= 0:
    raise UserError(f'--num_samples={num_samples}: give a positive number of samples.')
  text_options = {k: v for k, v in (text_options or {}).items() if v is not None}
  workdir_lib.check_output(output)
  run, state, _ = train.restore(config, workdir)
  if run.method.generate_text is not None:
    return _write_texts(run, state, num_samples, output, text_options)
  if text_options:
    raise UserError(f'--{"/--".join(sorted(text_options))} apply to language models only; '
                    f'{config.method!r} takes --num_samples and --output.')
  images = run.result_images(state)
  if images is not None:  # A data-free method: its current images, all of them.
    if jax.process_index() == 0:
      files.write_npz(output, samples=images, step=int(parallel.to_host(state.step)),
                      seed=config.seed)
    return output
  if run.method.sample is None and run.method.reconstruct is not None:
    return _write_reconstructions(run, state, num_samples, output)
  samples = run.draw(state, jax.random.fold_in(run.base_key, train.SAMPLE_TAG), num_samples, chunk)
  if jax.process_index() == 0:
    files.write_npz(output, samples=samples, step=int(parallel.to_host(state.step)),
                    seed=config.seed)
  return output


def _write_texts(run: train._Run, state, num: int, output: str, options: dict) -> str:
  """--mode=sample of a language model: `num` texts -> `output` (.npz, 'samples' a list of
  strings, with the sampling settings) and the same texts as a .txt file beside it."""
  options.setdefault('temperature', 1.0)
  key = jax.random.fold_in(run.base_key, train.SAMPLE_TAG)
  texts = run.method.generate_text(state, key, num, **options)
  if jax.process_index() == 0:
    files.write_npz(output, samples=np.array(texts), step=int(parallel.to_host(state.step)),
                    seed=run.config.seed, **{k: np.array(v) for k, v in options.items()})
    settings = ', '.join(f'{k}={v!r}' for k, v in options.items())
    files.write_text(os.path.splitext(output)[0] + '.txt', ''.join(
        f'=== sample {i} ({settings})\n{text}\n\n' for i, text in enumerate(texts)))
  return output


def _write_reconstructions(run: train._Run, state, num_images: int, output: str) -> str:
  """--mode=sample of a method that maps inputs to outputs but does not generate (an
  autoencoder; CycleGAN, whose `reconstruct` translates one domain's images).

  Writes the outputs for the first `num_images` test images to `output` under 'samples'
  (with 'inputs', 'labels' and, for an autoencoder, 'clean'), and a PNG of rows
  input | output (| clean) beside it. `reconstruct` may give its own 'label' and 'mask' (a
  two-domain batch has no top-level image).
  """
  config = run.config
  print(f'genlab: {config.method!r} does not generate samples: writing its outputs for the '
        f'first {num_images} {config.data.test_split!r} images instead (an autoencoder\'s '
        'reconstructions, a translator\'s translations).', file=sys.stderr)
  def reconstruct(state, batch, key):  # the batch comes back whole: rows of every process
    out = dict(run.method.reconstruct(state, batch, key))
    if 'image' in batch:
      out.setdefault('clean', batch['image'])
    out.setdefault('label', batch.get('label'))
    out.setdefault('mask', batch.get('mask'))
    return out
  step_fn = jax.jit(reconstruct, in_shardings=(run.replicated, run.sharded, None),
                    out_shardings=run.replicated)
  parts, seen = [], 0
  names = {'input': 'inputs', 'output': 'samples', 'clean': 'clean', 'label': 'labels'}
  for index, batch in enumerate(data_lib.eval_batches(
      config, config.data.test_split, run.eval_batch_size, process_index=jax.process_index(),
      process_count=jax.process_count())):
    key = jax.random.fold_in(jax.random.fold_in(run.base_key, train.SAMPLE_TAG), index)
    out = parallel.to_host(step_fn(state, parallel.to_global(batch, run.mesh), key))
    real = out['mask'] > 0
    parts.append({names[k]: v[real] for k, v in out.items() if k in names})
    seen += int(real.sum())
    if seen >= num_images:
      break
  arrays = {k: np.concatenate([p[k] for p in parts])[:num_images] for k in parts[0]}
  if seen < num_images:
    print(f'genlab: the test split has {seen} images; wrote all of them.', file=sys.stderr)
  if jax.process_index() == 0:
    files.write_npz(output, kind='reconstructions', step=int(parallel.to_host(state.step)),
                    seed=config.seed, **{k: v.astype(np.float32) if k != 'labels' else v
                                         for k, v in arrays.items()})
    columns = [arrays[k] for k in ('inputs', 'samples', 'clean') if k in arrays]
    rows = np.stack(columns, axis=1)[:32]  # (input, output[, clean]) side by side
    viz.save_png(os.path.splitext(output)[0] + '.png',
                 viz.image_grid(rows.reshape(-1, *rows.shape[2:]), ncols=4 * len(columns)))
  return output
