"""Goodfellow et al. 2014, Table 1: Parzen-window log-likelihood on MNIST, paper vs genlab.

  python experiments/goodfellow2014_gan/reproduce.py            # mnist5k; full MNIST if present
  python experiments/goodfellow2014_gan/reproduce.py --smoke    # seconds, checks the plumbing

Trains (or resumes) the original GAN (configs/gan_mnist.py), DCGAN (configs/dcgan_mnist.py)
and the spine's VAE (configs/vae_mnist.py), then measures each with the paper's estimator:
Gaussian windows on 10,000 samples, sigma cross-validated on the validation split, mean
log-likelihood of the test split +- its standard error. Beside them: the paper's rows, and the
same estimator with the real training digits as the 'samples' (real vs real). A second table
gives the classifier-based metrics (FID-in-domain, classifier score, precision, recall).
On full MNIST (where TFDS `mnist` is prepared) the split is the paper's: train[:50000] to
train, train[50000:] to choose sigma, test to score.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import dcgan_mnist, gan_mnist, vae_mnist  # pylint: disable=wrong-import-position
from genlab import cli, train  # pylint: disable=wrong-import-position

# Goodfellow et al. 2014, Table 1 (MNIST, mean log-likelihood of the test set, +- std. error).
PAPER = (('DBN', 138, 2.0), ('Stacked CAE', 121, 1.6), ('Deep GSN', 214, 1.1),
         ('Adversarial nets', 225, 2.0))
METRICS = ('fid', 'classifier_score', 'coverage', 'precision_recall', 'parzen')

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in seconds.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/goodfellow2014_gan', 'Where the runs go.')
_CLASSIFIER = flags.DEFINE_string('classifier_workdir', None,
                                  'The metric classifier (default: each config\'s).')


def configs(dataset: str, arg):
  """(row name, config) of the three models, measured with the same metrics."""
  rows = []
  for name, module in (('GAN (Goodfellow MLP)', gan_mnist), ('DCGAN', dcgan_mnist),
                       ('VAE (decoder means)', vae_mnist)):
    c = module.get_config(arg)
    c.eval.test_sample_metrics = METRICS
    if _CLASSIFIER.value:
      c.eval.classifier_workdir = _CLASSIFIER.value
    if dataset == 'mnist':
      c.dataset = 'mnist'
      c.data.train_split, c.data.eval_split, c.data.test_split = (
          'train[:50000]', 'train[50000:]', 'test')
    rows.append((name, c))
  return rows


def measure(name, config, workdir):
  results, skipped = train.train_or_skip(config, workdir)
  if skipped:
    return {'model': name, 'skipped': skipped}
  return {'model': name, 'metrics': results['metrics'],
          'reference': results['reference']['real_vs_real'],
          'minutes': results['train_seconds'] / 60, 'test_examples': results['num_examples']}


def print_tables(dataset, rows):
  print(f'\nGoodfellow et al. 2014, Table 1: Parzen window log-likelihood (nats), test split of '
        f'{dataset}')
  print(f'{"model":<26} {"paper":>13} {"genlab":>16} {"sigma":>6} {"train min":>10}')
  for name, ll, se in PAPER:
    print(f'{name:<26} {ll:>7} +- {se:<3}')
  reference = None
  for r in rows:
    if 'skipped' in r:
      print(f'{r["model"]:<26} {"":>13} skipped: {r["skipped"]}')
      continue
    m, reference = r['metrics'], r['reference']
    print(f'{r["model"]:<26} {"":>13} {m["parzen_ll"]:>8.1f} +- {m["parzen_stderr"]:<4.1f} '
          f'{m["parzen_sigma"]:>6.3f} {r["minutes"]:>10.1f}')
  if reference is None:
    return
  print(f'{"real training digits":<26} {"":>13} {reference["parzen_ll"]:>8.1f} +- '
        f'{reference["parzen_stderr"]:<4.1f} {reference["parzen_sigma"]:>6.3f}')
  print(f'\nSample quality in the embedding of genlab\'s digit classifier ({dataset} test split)')
  print(f'{"model":<26} {"FID":>7} {"cl. score":>10} {"modes":>6} {"precision":>10} '
        f'{"recall":>7}')
  for r in [r for r in rows if 'skipped' not in r] + [
      {'model': 'real vs real (train/test)', 'metrics': reference}]:
    m = r['metrics']
    print(f'{r["model"]:<26} {m["fid"]:>7.2f} {m["classifier_score"]:>10.2f} '
          f'{int(m["modes"]):>6} {m["precision"]:>10.3f} {m["recall"]:>7.3f}')


def main(_):
  arg = 'smoke' if _SMOKE.value else None
  for dataset in ('mnist5k', 'mnist'):
    rows = [measure(name, c, os.path.join(_ROOT.value, dataset, c.method + '_' + name.split()[0]))
            for name, c in configs(dataset, arg)]
    print_tables(dataset, rows)
  print('\nThe paper fits the windows on 10,000 samples and scores the 10,000 MNIST test digits '
        'after training on 50,000; mnist5k trains on 4,000 and scores 500, so compare rows '
        'within a table, not with the paper. The estimator has high variance and is known to '
        'reward blurry samples and memorisation (Theis et al. 2016).')


if __name__ == '__main__':
  cli.run_main(main)  # genlab's error contract: one line for a mistake, or for Ctrl-C
