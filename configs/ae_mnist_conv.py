"""Convolutional bottleneck autoencoder on mnist5k: dimensionality reduction against PCA.

The VAE's convolutional encoder and decoder (genlab/models/vae.py) with a linear code.
Encoder: 4x4 stride-2 convs with 16 and 32 channels (28 -> 14 -> 7), a 256-unit layer, the code
z. Decoder: 256 units, 7x7x32, nearest 2x upsampling + 3x3 convs (32, 16) to 28x28, a 3x3 conv
to the logits. ReLU, reconstruction cross-entropy, Adam(1e-3) with a cosine decay, batch 100,
3,000 steps.

  python run.py --config configs/ae_mnist_conv.py            # z = 32
  python run.py --config configs/ae_mnist_conv.py:latent=2
  python run.py --config configs/ae_mnist_conv.py:smoke      # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, latent=32)
  c = config_defaults.autoencoder_config()  # every key
  c.method = 'autoencoder'
  c.dataset = 'mnist5k'
  # ~70 ms a step on this CPU, 10x the MLP's
  config_defaults.set_schedule(c, 100, 3_000, log_every=100, eval_every=1_000,
                               checkpoint_every=1_000)
  c.model.update(kind='conv', latent_dim=arg.latent, hidden_dims=(256,), conv_features=(16, 32),
                 activation='relu', code_activation='linear')
  c.loss = dict(reconstruction='cross_entropy', sparsity='none', sparsity_weight=0.0,
                sparsity_target=0.05, weight_decay=0.0)
  c.noise = dict(kind='none', level=0.0)
  c.optimizer = dict(name='adam', learning_rate=1e-3, schedule='cosine', grad_clip_norm=None)
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
  return c
