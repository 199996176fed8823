"""Every image generator of genlab on mnist5k, trained and measured alike, in one table.

  python experiments/generative_zoo_mnist5k/reproduce.py              # trains or resumes all
  python experiments/generative_zoo_mnist5k/reproduce.py --only=ddpm_mnist,ddpm_cond_mnist_w0
  python experiments/generative_zoo_mnist5k/reproduce.py --seeds=3     # + 2 seeds of the 2 best
  python experiments/generative_zoo_mnist5k/reproduce.py --smoke       # the plumbing, minutes

Trains (or resumes, in --workdir_root) each config below at its own recipe, then prints on the
test split, with the same sample counts for every model and genlab's digit classifier as the
embedding: FID-in-domain, classifier score, precision / recall, the Classification Accuracy
Score of the conditional models (Ravuri & Vinyals 2019: a classifier trained only on 10,000
of their samples, tested on the real test digits), the likelihoods each model defines, its
training time and the seconds to draw 1,000 samples on this machine. The real-vs-real row
scores the training digits as if they were samples. With --seeds=N the two models with the
best FID are trained again with seeds 1..N-1, and their mean and standard deviation printed.

Likelihoods, in bits per dimension (nats / (784 ln 2)), on different discretisations of the
same test digits, so not one scale: the VAE's is -log p of the dynamically binarised digit
(1 bit per pixel at most; IWAE bound, k = 5000), the DDPMs' the variational bound on the 8-bit
digit (Ho et al. 2020, Eq. 5; 8 bits at most). The Parzen window estimate (nats, Goodfellow et
al. 2014) is computed for every model, and is known to mislead (Theis et al. 2016).
"""
from __future__ import annotations

import importlib
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from genlab import cli, config_defaults, files, train, viz  # pylint: disable=wrong-import-position

# (row = its name for --only, config, label, overrides of the sampler); in the order of the
# table. A row with overrides samples the checkpoint its config trains (the same workdir) in
# another way: the conditional DDPM with and without guidance.
MODELS = (
    ('vae_mnist', 'vae_mnist', 'VAE (Kingma & Welling 2014)', {}),
    ('gan_mnist', 'gan_mnist', 'GAN, MLP (Goodfellow et al. 2014)', {}),
    ('dcgan_mnist', 'dcgan_mnist', 'DCGAN + R1', {}),
    ('cgan_mnist', 'cgan_mnist', 'conditional DCGAN', {}),
    ('stylegan2_mnist', 'stylegan2_mnist', 'StyleGAN2', {}),
    ('ddpm_mnist', 'ddpm_mnist', 'DDPM', {}),
    ('ddpm_cond_mnist', 'ddpm_cond_mnist', 'conditional DDPM, guidance 1', {}),
    ('ddpm_cond_mnist_w0', 'ddpm_cond_mnist', 'conditional DDPM, no guidance',
     {'guidance': 0.0}),
)
ROWS = {row: (name, label, sampler) for row, name, label, sampler in MODELS}
METRICS = ('fid', 'classifier_score', 'coverage', 'precision_recall', 'parzen')

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/generative_zoo_mnist5k', 'Where the runs go.')
_ONLY = flags.DEFINE_list('only', [], 'Rows to run, by name (default: all of MODELS).')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds of the two best models by FID (seed 0 first).')
_CLASSIFIER = flags.DEFINE_string('classifier_workdir', '', 'The metric classifier\'s workdir '
                                  '(default: the genlab cache).')
_GRIDS = flags.DEFINE_string('grids', '', 'Also write each model\'s first 64 samples as '
                             'DIR/<config>.png.')


def config_for(name: str, smoke: bool, seed: int = 0):
  c = importlib.import_module(f'configs.{name}').get_config('smoke' if smoke else None)
  conditional = bool(c.get('model', {}).get('conditional', False))
  c.eval.test_sample_metrics = METRICS + (('cas',) if conditional else ())
  if smoke:  # the same small sample counts and smoke classifier for every family
    config_defaults.smoke_sample_metrics(c)
  c.seed = seed
  if _CLASSIFIER.value:
    c.eval.classifier_workdir = _CLASSIFIER.value
  return c


def sampling_seconds(config, workdir: str, grid_path: str = '') -> float:
  """Seconds to draw 1,000 samples with the trained model (compiled first), as the metrics
  draw them; the first 64 written as a grid when asked."""
  run, state, _ = train.restore(config, workdir)
  key = jax.random.key(config.seed)
  samples = run.draw(state, key, 1000)  # compiles
  t0 = time.perf_counter()
  jax.block_until_ready(run.draw(state, jax.random.fold_in(key, 1), 1000))
  seconds = time.perf_counter() - t0
  if grid_path:
    viz.save_png(grid_path, viz.image_grid(samples[:64], 8), scale=2)
  return seconds


def measure(row: str, seed: int = 0) -> dict:
  """Trains (or resumes) the row's config in its workdir and evaluates it on the test split;
  a row with sampler overrides evaluates the same checkpoint with them, once (the figures are
  kept in the workdir as zoo_<row>.json, beside the config's own results.json)."""
  name, label, sampler = ROWS[row]
  c = config_for(name, _SMOKE.value, seed)
  workdir = os.path.join(_ROOT.value, name if not seed else f'{name}_seed{seed}')
  results = train.train_and_evaluate(c, workdir)
  if sampler:
    c.sampler.update(sampler)
    path = os.path.join(workdir, f'zoo_{row}.json')
    kept = files.read_json(path)
    if kept is None or kept.get('step') != results['step']:
      kept = dict(train.evaluate(c, workdir), train_seconds=results['train_seconds'])
      files.write_json(path, kept)
    results = kept
  grid = os.path.join(_GRIDS.value, f'{row}.png') if _GRIDS.value and not seed else ''
  return {'name': name, 'row': row, 'label': label, 'metrics': results['metrics'],
          'reference': results.get('reference', {}).get('real_vs_real', {}),
          'minutes': results['train_seconds'] / 60, 'steps': results['step'],
          # the spread table has no timing column, so other seeds skip the dear timed draw
          'sample_s': sampling_seconds(c, workdir, grid) if not seed else None}


def _likelihood(m: dict) -> str:
  if 'bits_per_dim' in m:
    return f'{m["bits_per_dim"]:.3f} (8-bit)'
  if 'nll' in m:
    return f'{m["nll"] / (784 * math.log(2)):.3f} (binary)'
  return ''


def _cell(m: dict, key: str, fmt: str) -> str:
  return format(m[key], fmt) if key in m else '-'


def print_table(rows: list[dict]) -> None:
  real = next((r['reference'] for r in rows if 'cas' in r['reference']),
              rows[0]['reference'] if rows else {})
  print('\nmnist5k test split; FID, score, precision/recall in the embedding of genlab\'s '
        'digit classifier; CAS in %')
  print('| model | steps | FID | classifier score | precision / recall | CAS | bits/dim | '
        'Parzen (nats) | train min | s / 1,000 samples |')
  print('|---|---|---|---|---|---|---|---|---|---|')
  print(f'| real vs real (train vs test) | | {_cell(real, "fid", ".2f")} | '
        f'{_cell(real, "classifier_score", ".2f")} | {_cell(real, "precision", ".3f")} / '
        f'{_cell(real, "recall", ".3f")} | '
        f'{format(100 * real["cas"], ".1f") if "cas" in real else "-"} | | '
        f'{_cell(real, "parzen_ll", ".1f")} | | |')
  for r in rows:
    m = r['metrics']
    cas = format(100 * m['cas'], '.1f') if 'cas' in m else '-'
    parzen = (f'{m["parzen_ll"]:.1f} +- {m["parzen_stderr"]:.1f}' if 'parzen_ll' in m else '-')
    print(f'| {r["label"]} (`{r["name"]}`) | {r["steps"]:,} | {m["fid"]:.2f} | '
          f'{m["classifier_score"]:.2f} | {m["precision"]:.3f} / {m["recall"]:.3f} | {cas} | '
          f'{_likelihood(m) or "-"} | {parzen} | {r["minutes"]:.1f} | {r["sample_s"]:.3g} |')


def print_spread(best: list[str], runs: dict[str, list[dict]]) -> None:
  print(f'\nSpread over {_SEEDS.value} seeds (mean +- standard deviation)')
  print('| model | FID | classifier score | precision | recall | CAS |')
  print('|---|---|---|---|---|---|')
  for name in best:
    values = lambda key: np.array([r['metrics'][key] for r in runs[name] if key in r['metrics']])
    cells = []
    for key, fmt, scale in (('fid', '.2f', 1), ('classifier_score', '.2f', 1),
                            ('precision', '.3f', 1), ('recall', '.3f', 1), ('cas', '.1f', 100)):
      v = values(key) * scale
      cells.append(f'{v.mean():{fmt}} +- {v.std(ddof=1):{fmt}}' if len(v) > 1 else '-')
    print(f'| `{name}` | ' + ' | '.join(cells) + ' |')


def main(_):
  chosen = [row for row, *_ in MODELS if not _ONLY.value or row in _ONLY.value]
  unknown = set(_ONLY.value) - set(ROWS)
  if unknown:
    from genlab.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f'--only={",".join(sorted(unknown))}: choose from {", ".join(ROWS)}.')
  if _GRIDS.value:
    os.makedirs(_GRIDS.value, exist_ok=True)
  rows = [measure(row) for row in chosen]
  print_table(rows)
  if _SEEDS.value > 1:
    best = [r['row'] for r in sorted(rows, key=lambda r: r['metrics']['fid'])[:2]]
    runs = {row: [r for r in rows if r['row'] == row] for row in best}
    for row in best:
      runs[row] += [measure(row, seed) for seed in range(1, _SEEDS.value)]
    print_spread(best, runs)


if __name__ == '__main__':
  cli.run_main(main)
