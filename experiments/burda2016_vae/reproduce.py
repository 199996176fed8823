"""Burda et al. 2016, 1-layer VAE trained with k=1: test NLL (IWAE bound, k=5000) vs genlab.

  python experiments/burda2016_vae/reproduce.py            # mnist5k; full MNIST if present
  python experiments/burda2016_vae/reproduce.py --smoke    # seconds, checks the plumbing

Trains (or resumes) configs/vae_mnist.py on mnist5k and, where TFDS `mnist` is prepared,
configs/vae_mnist_full.py; then prints the paper's number beside genlab's and beside the NLL
of an independent-Bernoulli pixel model fitted on the same train split.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import vae_mnist, vae_mnist_full  # pylint: disable=wrong-import-position
from genlab import data as data_lib  # pylint: disable=wrong-import-position
from genlab import cli, train  # pylint: disable=wrong-import-position
from genlab.metrics import likelihood  # pylint: disable=wrong-import-position

PAPER_NLL = 86.76  # Burda et al. 2016, Table 1: VAE, 1 stochastic layer, k=1, MNIST test.

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in seconds.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/burda2016_vae', 'Where the runs go.')


def split_images(config, split):
  batches = data_lib.eval_batches(config, split, config.eval.batch_size)
  images = [b['image'][b['mask'] > 0] for b in batches]
  return np.concatenate(images).reshape(-1, int(np.prod(images[0].shape[1:])))


def pixel_baseline(config) -> float:
  return float(likelihood.bernoulli_pixel_baseline_nll(
      split_images(config, config.data.train_split),
      split_images(config, config.data.test_split)))


def reproduce(name, config, workdir):
  results, skipped = train.train_or_skip(config, workdir)
  if skipped:
    return {'data': name, 'skipped': skipped}
  m = results['metrics']
  return {'data': name, 'nll': m['nll'], 'neg_elbo': m['neg_elbo'],
          'baseline': pixel_baseline(config), 'minutes': results['train_seconds'] / 60,
          'steps': results['step'], 'test_examples': results['num_examples']}


def main(_):
  arg = 'smoke' if _SMOKE.value else None
  rows = [reproduce('mnist5k', vae_mnist.get_config(arg), os.path.join(_ROOT.value, 'mnist5k')),
          reproduce('mnist', vae_mnist_full.get_config(arg), os.path.join(_ROOT.value, 'mnist'))]
  print('\nBurda et al. 2016, 1-layer VAE, k=1; test NLL in nats (IWAE bound, k=5000)')
  print(f'{"data":<9} {"paper":>7} {"genlab NLL":>11} {"-ELBO":>8} {"pixel baseline":>15} '
        f'{"train min":>10}')
  for r in rows:
    if 'skipped' in r:
      print(f'{r["data"]:<9} {PAPER_NLL:>7.2f}  skipped: {r["skipped"]}')
    else:
      print(f'{r["data"]:<9} {PAPER_NLL:>7.2f} {r["nll"]:>11.2f} {r["neg_elbo"]:>8.2f} '
            f'{r["baseline"]:>15.2f} {r["minutes"]:>10.1f}')
  print('The paper trains on 60,000 digits for 3,280 passes; mnist5k has 4,000 training digits, '
        'so its NLL is not comparable to the paper\'s number, only to the baseline.')


if __name__ == '__main__':
  cli.run_main(main)  # genlab's error contract: one line for a mistake, or for Ctrl-C
