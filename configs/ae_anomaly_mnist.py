"""Anomaly detection on mnist5k: an autoencoder trained without one digit class.

configs/ae_mnist.py (its network, loss, Adam(1e-3) with a cosine decay, batch 100, 5,000 steps)
with a 16-unit code, trained on the nine other classes (the held-out class is removed from the
train and validation splits, not from test). Every test image is scored by its squared
reconstruction error; results.json holds the AUROC of the held-out class against the rest,
beside a PCA-reconstruction baseline with 16 components fitted on the same nine classes.
configs/vae_mnist.py takes the same --config.data.held_out_labels and scores by the negative
ELBO.

  python run.py --config configs/ae_anomaly_mnist.py                 # holds out the 7s
  python run.py --config configs/ae_anomaly_mnist.py:held_out=4
  python run.py --config configs/ae_anomaly_mnist.py:smoke           # for tests
"""
from configs import ae_mnist
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, held_out=7)
  c = ae_mnist.get_config('latent=16')  # network, loss, optimizer and schedule of ae_mnist
  c.data.held_out_labels = (arg.held_out,)
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
  return c
