"""Denoising autoencoder (Vincent et al. 2008) on mnist5k, against classical denoisers.

configs/ae_mnist.py (its network, loss, Adam(1e-3) with a cosine decay, batch 100, 5,000 steps)
with a 128-unit code, trained to reconstruct the clean digit from a corrupted one, with fresh
noise every step: Gaussian noise (sigma = level), masking noise or salt-and-pepper noise (a
fraction `level` of the pixels). At the end, results.json holds the test PSNR and SSIM of the
denoised images beside the noisy input's and those of a Gaussian filter, a median filter,
total-variation and non-local-means denoising, each with its parameter tuned on the validation
split at the same noise; analysis/denoising.png shows rows noisy | denoised | clean | the best
classical denoiser.

  python run.py --config configs/dae_mnist.py                            # Gaussian, 0.5
  python run.py --config configs/dae_mnist.py:noise=salt_and_pepper,level=0.3
  python run.py --config configs/dae_mnist.py:noise=masking,level=0.5
  python run.py --config configs/dae_mnist.py:smoke                      # for tests
"""
from configs import ae_mnist
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, noise='gaussian', level=0.5)
  c = ae_mnist.get_config('latent=128')  # network, loss, optimizer and schedule of ae_mnist
  c.noise = dict(kind=arg.noise, level=arg.level)
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
    c.eval.denoisers = ('gaussian_filter', 'median_filter', 'tv_chambolle')
  return c
