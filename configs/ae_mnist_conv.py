"""Convolutional bottleneck autoencoder on mnist5k: dimensionality reduction against PCA.

The VAE's convolutional encoder and decoder (genlab/models/vae.py) with a linear code.
Encoder: 4x4 stride-2 convs with 16 and 32 channels (28 -> 14 -> 7), a 256-unit layer, the
code z. Decoder: 256 units, 7x7x32, nearest 2x upsampling + 3x3 convs (32, 16) to 28x28, a
3x3 conv to the logits. ReLU, reconstruction cross-entropy, Adam(1e-3), batch 100, 3,000 steps.

  python run.py --config configs/ae_mnist_conv.py            # z = 32
  python run.py --config configs/ae_mnist_conv.py:latent=2
  python run.py --config configs/ae_mnist_conv.py:smoke      # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, latent=32)
  c = config_defaults.autoencoder_config()
  c.model.kind = 'conv'
  c.model.latent_dim = arg.latent
  c.model.hidden_dims = (256,)
  c.model.conv_features = (16, 32)
  c.num_train_steps = 3_000            # ~70 ms a step on this CPU, 10x the MLP's
  c.eval_every_steps = 1_000
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
  return c
