"""Karras et al. 2020 (StyleGAN2) on mnist5k beside genlab's other GANs, measured alike.

  python experiments/karras2020_stylegan2/reproduce.py            # trains or resumes all three
  python experiments/karras2020_stylegan2/reproduce.py --smoke    # seconds, checks the plumbing

Trains (or resumes) configs/stylegan2_mnist.py, configs/dcgan_mnist.py and configs/gan_mnist.py
and prints their test-split metrics in the embedding of genlab's digit classifier (FID-in-domain,
classifier score, modes, precision, recall) and StyleGAN2's perceptual path length in W
(Karras et al. 2019, Eq. 3; genlab/metrics/ppl.py). Then the published reference numbers, which
need a GPU and the full data and were NOT run here, with the protocol that reproduces them.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from configs import dcgan_mnist, gan_mnist, stylegan2_mnist  # pylint: disable=wrong-import-position
from genlab import cli, train  # pylint: disable=wrong-import-position

METRICS = ('fid', 'classifier_score', 'coverage', 'precision_recall')

FFHQ_COMMAND = (
    'python run.py --config configs/stylegan2_folder.py:path=FFHQ,res=1024 '
    '--config.augment.kind=none --config.batch_size=32 --config.loss.r1_gamma=10 '
    '--config.model.mapping_layers=8 --config.model.channel_base=32768 '
    '--config.g_optimizer.learning_rate=0.002 --config.d_optimizer.learning_rate=0.002 '
    '--config.ema_rampup=0')
# Published figures (not run here: they need a GPU and the full data sets).
REFERENCE = (
    ('StyleGAN2 config F, FFHQ 1024x1024',
     'FID 2.84 (50k samples vs all 70k images), path length 145.0 (W, end)',
     'Karras et al. 2020, Table 1',
     '(stylegan2-ada-pytorch cfg "stylegan2": batch 32, gamma 10, 8 mapping layers, channel_base '
     '32768, lr 0.002, no ADA, 25,000 kimg on 8 GPUs) ' + FFHQ_COMMAND),
    ('StyleGAN2 + ADA, CIFAR-10 32x32, class-conditional', 'FID 2.42 (the previous record 5.59)',
     'Karras et al. 2020b, "Training GANs with Limited Data", Sec. 4',
     'python run.py --config configs/stylegan2_cifar10.py  (cfg "cifar": batch 64, gamma 0.01, '
     'mbstd group 32, ADA target 0.6, 100,000 kimg on 2 GPUs; genlab\'s StyleGAN2 is '
     'unconditional, so its comparable figure is the paper\'s unconditional one)'),
)

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in seconds.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/karras2020_stylegan2', 'Where the runs go.')
_PPL_SAMPLES = flags.DEFINE_integer('ppl_samples', 2000, 'Latent pairs for the path length.')


def configs(arg):
  rows = []
  for name, module in (('StyleGAN2', stylegan2_mnist), ('DCGAN', dcgan_mnist),
                       ('GAN (Goodfellow MLP)', gan_mnist)):
    c = module.get_config(arg)
    c.eval.test_sample_metrics = METRICS
    rows.append((name, c))
  return rows


def path_length(config, workdir, num_samples):
  """PPL in W of the EMA generator (sampling 'end', as the StyleGAN2 paper reports it)."""
  import jax  # pylint: disable=g-import-not-at-top
  from genlab.methods import stylegan2  # pylint: disable=g-import-not-at-top
  from genlab.metrics import ppl  # pylint: disable=g-import-not-at-top
  run, state, _ = train.restore(config, workdir)
  nets = stylegan2.networks(config, run.data_info.image_shape)
  mean, _ = ppl.perceptual_path_length(nets, state.ema_params, jax.random.key(config.seed),
                                       num_samples)
  return mean


def main(_):
  arg = 'smoke' if _SMOKE.value else None
  rows = []
  for name, c in configs(arg):
    workdir = os.path.join(_ROOT.value, name.split()[0].lower())
    results = train.train_and_evaluate(c, workdir)
    row = {'model': name, 'metrics': results['metrics'],
           'minutes': results['train_seconds'] / 60, 'steps': results['step']}
    if c.method == 'stylegan2':
      row['ppl'] = path_length(c, workdir, 16 if _SMOKE.value else _PPL_SAMPLES.value)
    rows.append(row)
  print('\nmnist5k test split, metrics in the embedding of genlab\'s digit classifier')
  print(f'{"model":<22} {"steps":>6} {"FID":>7} {"cl. score":>10} {"modes":>6} '
        f'{"precision":>10} {"recall":>7} {"PPL (W)":>8} {"train min":>10}')
  for r in rows:
    m = r['metrics']
    ppl_text = f'{r["ppl"]:>8.1f}' if 'ppl' in r else f'{"":>8}'
    print(f'{r["model"]:<22} {r["steps"]:>6} {m["fid"]:>7.2f} {m["classifier_score"]:>10.2f} '
          f'{int(m["modes"]):>6} {m["precision"]:>10.3f} {m["recall"]:>7.3f} {ppl_text} '
          f'{r["minutes"]:>10.1f}')
  print('\nPublished reference numbers (NOT run here: no GPU, no data on this machine)')
  for what, figure, source, protocol in REFERENCE:
    print(f'- {what}: {figure} ({source})\n    to reproduce: {protocol}')


if __name__ == '__main__':
  cli.run_main(main)
