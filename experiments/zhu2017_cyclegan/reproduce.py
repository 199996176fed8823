"""CycleGAN between two unpaired digit sources, measured as CyCADA measures digit translation.

  python experiments/zhu2017_cyclegan/reproduce.py            # three runs of ~20 min on a CPU
  python experiments/zhu2017_cyclegan/reproduce.py --smoke    # seconds, checks the plumbing

Trains (or resumes) configs/cyclegan_digits_mnist.py as the paper has it, with noise on the
translations before they are cycled back (Bashkirova et al. 2019), and with CyCADA's semantic
loss (Hoffman et al. 2018, Eq. 5), then prints for each direction (digits -> MNIST, MNIST -> digits):
the accuracy of the target domain's classifier on translations of the labelled test split
of the source domain (labels from the source data set), the same classifier on the untranslated
images ("source only"), the label-flip rate (inputs that the source domain's own classifier
reads right whose translation the target's classifier reads as another digit), the FID of the
translations against the target's test split in that classifier's features, the cycle L1, and
the training time. Sample grids: WORKDIR/analysis/test_a_to_b.png (input | translation | back).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import cyclegan_digits_mnist  # pylint: disable=wrong-import-position
from genlab import cli, train  # pylint: disable=wrong-import-position

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in seconds.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/zhu2017_cyclegan', 'Where the runs go.')

DIRECTIONS = (('a_to_b', 'digits -> MNIST', 'a'), ('b_to_a', 'MNIST -> digits', 'b'))


def runs(smoke: bool):
  for name, folder, variant in (('CycleGAN', 'plain', None),
                                ('CycleGAN + cycle noise', 'noise', 'noise'),
                                ('CycleGAN + semantic loss', 'semantic', 'semantic')):
    arg = ','.join(a for a in ('smoke' if smoke else None, variant) if a)
    yield name, folder, cyclegan_digits_mnist.get_config(arg or None)


def main(_):
  rows = []
  for name, folder, config in runs(_SMOKE.value):
    results, skipped = train.train_or_skip(config, os.path.join(_ROOT.value, folder))
    rows.append((name, results, skipped))
  header = (f'{"model":<26} {"direction":<16} {"accuracy":>9} {"label flips":>12} {"FID":>8} '
            f'{"cycle L1":>9} {"train min":>10}')
  print('\nContent preservation of unpaired digit translation (test splits: digits 359, mnist5k '
        '500)')
  print(header)
  printed_source = set()
  for name, results, skipped in rows:
    if skipped:
      print(f'{name:<26} skipped: {skipped}')
      continue
    m = results['metrics']
    for key, label, domain in DIRECTIONS:
      if key not in printed_source:  # the same classifier on untranslated images
        printed_source.add(key)
        print(f'{"source only":<26} {label:<16} {m[f"source_only/accuracy_{key}"]:>9.1%} '
              f'{"":>12} {m[f"source_only/fid_{key}"]:>8.2f}')
      print(f'{name:<26} {label:<16} {m[f"accuracy_{key}"]:>9.1%} '
            f'{m[f"label_flip_{key}"]:>12.1%} {m[f"fid_{key}"]:>8.2f} '
            f'{m[f"cycle_l1_{domain}"]:>9.4f} {results["train_seconds"] / 60:>10.1f}')
  print('\nAccuracy: of the MNIST classifier on digits -> MNIST (of the digits classifier on '
        'MNIST -> digits), labels from the source data set. FID: translations vs the target '
        "domain's test split, in that classifier's features (genlab's FID-in-domain).")


if __name__ == '__main__':
  cli.run_main(main)
