"""Autoencoders against the classical methods they replace, on mnist5k: one command, four tables.

  python experiments/autoencoders_vs_classical/reproduce.py           # ~30 min on 2 CPU cores
  python experiments/autoencoders_vs_classical/reproduce.py --smoke   # a minute, the plumbing

1. Dimensionality reduction: MLP and convolutional autoencoders with codes of 2, 8 and 32
   units against PCA with as many components: test reconstruction MSE per pixel, and the
   accuracy of a 5-nearest-neighbour classifier (fitted on the 4,000 training codes) on the
   codes, on PCA codes and on raw pixels.
2. Denoising: the denoising autoencoder under Gaussian (sigma 0.5), salt-and-pepper (30 %) and
   masking (50 %) noise against the noisy input and four classical denoisers, each with its
   parameter tuned on the validation split: test PSNR (dB) and SSIM.
3. Sparsity: the sparse autoencoder with the KL penalty (rho = 0.1) and with the L1 penalty:
   mean hidden activation, share of near-silent units (mean activation < 0.01), test MSE.
4. Anomaly detection: for each held-out digit, an autoencoder (reconstruction error) and the
   VAE (negative ELBO) trained on the nine other digits, against PCA reconstruction error:
   the AUROC of the held-out digit in the test split.

Every run is an ordinary genlab run under --workdir_root (re-running resumes or re-evaluates);
the pictures the README shows are copied to <workdir_root>/pictures/.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from PIL import Image  # pylint: disable=wrong-import-position

# pylint: disable-next=wrong-import-position
from configs import ae_anomaly_mnist, ae_mnist, ae_mnist_conv, dae_mnist, sae_mnist, vae_mnist
from genlab import cli, train  # pylint: disable=wrong-import-position

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in a minute.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/autoencoders_vs_classical', 'Where runs go.')
_HELD_OUT = flags.DEFINE_list('held_out', [str(d) for d in range(10)],
                              'Digits to hold out, one anomaly-detection run each.')
_VAE_STEPS = flags.DEFINE_integer('vae_steps', 5000, 'Training steps of each anomaly VAE.')

LATENTS = (2, 8, 32)
NOISES = (('gaussian', 0.5), ('salt_and_pepper', 0.3), ('masking', 0.5))
DENOISERS = ('gaussian_filter', 'median_filter', 'tv_chambolle', 'nl_means')


def _arg(**kw) -> str:
  return ','.join((['smoke'] if _SMOKE.value else []) + [f'{k}={v}' for k, v in kw.items()])


def run(name: str, config) -> dict:
  """Trains (or resumes) one config into <root>/<name>; results.json's metrics + minutes."""
  workdir = os.path.join(_ROOT.value, name)
  results, skipped = train.train_or_skip(config, workdir)
  if skipped:  # every run here is on mnist5k, which is always available
    raise SystemExit(f'{name}: {skipped}')
  return dict(results['metrics'], minutes=results['train_seconds'] / 60, workdir=workdir)


def keep_picture(result: dict, picture: str, name: str, scale: int = 1) -> None:
  """Copies a run's analysis picture to <root>/pictures/<name>.png, enlarged `scale` times."""
  source = os.path.join(result['workdir'], 'analysis', f'{picture}.png')
  if os.path.exists(source):
    image = Image.open(source)
    os.makedirs(os.path.join(_ROOT.value, 'pictures'), exist_ok=True)
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(
        os.path.join(_ROOT.value, 'pictures', f'{name}.png'))


def dimensionality_reduction() -> None:
  print('\n1. Dimensionality reduction: test MSE per pixel and 5-NN accuracy on the codes')
  print(f'{"model":<12} {"z":>3} {"AE MSE":>8} {"PCA MSE":>8} {"kNN code":>9} {"kNN PCA":>8} '
        f'{"kNN pixels":>10} {"train min":>9}')
  for kind, module in (('MLP', ae_mnist), ('conv', ae_mnist_conv)):
    for z in LATENTS:
      r = run(f'{module.__name__.split(".")[-1]}_z{z}', module.get_config(_arg(latent=z)))
      print(f'{kind:<12} {z:>3} {r["recon_mse"]:>8.4f} {r["baseline/pca/recon_mse"]:>8.4f} '
            f'{r["knn/code"]:>9.3f} {r["baseline/knn/pca"]:>8.3f} '
            f'{r["baseline/knn/pixels"]:>10.3f} {r["minutes"]:>9.1f}')
      if z == 2:
        keep_picture(r, 'codes_2d', f'{kind.lower()}_codes_2d')
        keep_picture(r, 'pca_2d', 'pca_2d')


def denoising() -> None:
  print('\n2. Denoising: test PSNR (dB) / SSIM; classical parameters tuned on validation')
  print(f'{"noise":<22} {"noisy":>12} {"DAE":>12} ' + ' '.join(f'{d:>15}' for d in DENOISERS)
        + f' {"train min":>9}')
  for kind, level in NOISES:
    r = run(f'dae_mnist_{kind}_{level}', dae_mnist.get_config(_arg(noise=kind, level=level)))
    cells = [f'{r[f"baseline/{d}/psnr"]:>6.2f} / {r[f"baseline/{d}/ssim"]:.3f}'
             for d in DENOISERS if f'baseline/{d}/psnr' in r]
    print(f'{kind + " " + str(level):<22} '
          f'{r["baseline/noisy/psnr"]:>5.2f} / {r["baseline/noisy/ssim"]:.3f} '
          f'{r["denoise/psnr"]:>5.2f} / {r["denoise/ssim"]:.3f} ' + ' '.join(
              f'{c:>15}' for c in cells) + f' {r["minutes"]:>9.1f}')
    keep_picture(r, 'denoising', f'denoising_{kind}', scale=3)


def sparsity() -> None:
  print("\n3. Sparse autoencoders: hidden activations on the test split")
  print(f'{"penalty":<22} {"mean act.":>9} {"target":>7} {"silent":>7} {"test MSE":>9} '
        f'{"kNN code":>9} {"train min":>9}')
  for penalty in ('kl', 'l1'):
    config = sae_mnist.get_config(_arg(penalty=penalty))
    r = run(f'sae_mnist_{penalty}', config)
    weight = config.loss.sparsity_weight
    label = f'KL, beta={weight:g}' if penalty == 'kl' else f'L1, lambda={weight:g}'
    target = f'{r["sparsity/target"]:.3f}' if 'sparsity/target' in r else '-'
    print(f'{label:<22} {r["sparsity/mean_activation"]:>9.3f} {target:>7} '
          f'{r["sparsity/silent_fraction"]:>7.1%} {r["recon_mse"]:>9.4f} '
          f'{r["knn/code"]:>9.3f} {r["minutes"]:>9.1f}')
    keep_picture(r, 'features', f'features_{penalty}', scale=2)


def anomaly_detection() -> None:
  print('\n4. Anomaly detection: AUROC of the held-out digit among all test digits')
  print(f'{"held out":>8} {"AE recon":>9} {"VAE -ELBO":>10} {"PCA recon":>10} {"AE min":>7} '
        f'{"VAE min":>8}')
  rows = []
  for digit in (int(d) for d in _HELD_OUT.value):
    a = run(f'ae_anomaly_mnist_{digit}', ae_anomaly_mnist.get_config(_arg(held_out=digit)))
    vae = vae_mnist.get_config(_arg())
    vae.data.held_out_labels = (digit,)
    if not _SMOKE.value:
      vae.num_train_steps = _VAE_STEPS.value
      vae.eval_every_steps = vae.checkpoint_every_steps = _VAE_STEPS.value
      vae.eval.test_num_importance_samples = 100  # the NLL is not the point here
    v = run(f'vae_anomaly_mnist_{digit}', vae)
    rows.append((a['anomaly/auroc_recon'], v['anomaly/auroc_neg_elbo'],
                 a['baseline/pca/anomaly_auroc']))
    print(f'{digit:>8} {rows[-1][0]:>9.3f} {rows[-1][1]:>10.3f} {rows[-1][2]:>10.3f} '
          f'{a["minutes"]:>7.1f} {v["minutes"]:>8.1f}')
  means = [sum(col) / len(rows) for col in zip(*rows)]
  print(f'{"mean":>8} {means[0]:>9.3f} {means[1]:>10.3f} {means[2]:>10.3f}')


def main(_):
  dimensionality_reduction()
  denoising()
  sparsity()
  anomaly_detection()
  print(f'\nPictures: {os.path.join(_ROOT.value, "pictures")}/')


if __name__ == '__main__':
  cli.run_main(main)  # genlab's error contract: one line for a mistake, or for Ctrl-C
