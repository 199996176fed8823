"""Bottleneck autoencoder on mnist5k: dimensionality reduction against PCA.

MLP 784 -> 512 -> 256 -> z (linear code) -> 256 -> 512 -> 784 (sigmoid), ReLU, the
reconstruction cross-entropy, Adam(1e-3) with a cosine decay, batch 100. At the end,
results.json holds the test reconstruction MSE beside PCA's with z components, and the
accuracy of a 5-nearest-neighbour classifier on the codes beside PCA codes and raw pixels;
with z=2, analysis/codes_2d.png and analysis/pca_2d.png plot the test codes.

  python run.py --config configs/ae_mnist.py                 # z = 32
  python run.py --config configs/ae_mnist.py:latent=2        # z = 2, 8, 32 in the experiment
  python run.py --config configs/ae_mnist.py:smoke           # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, latent=32)
  c = config_defaults.autoencoder_config()
  c.model.latent_dim = arg.latent
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
  return c
