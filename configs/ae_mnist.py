"""Bottleneck autoencoder on mnist5k: dimensionality reduction against PCA.

MLP 784 -> 512 -> 256 -> z (linear code) -> 256 -> 512 -> 784 (sigmoid), ReLU, the
reconstruction cross-entropy, Adam(1e-3) with a cosine decay, batch 100, 5,000 steps. At the
end, results.json holds the test reconstruction MSE beside PCA's with z components, and the
accuracy of a 5-nearest-neighbour classifier on the codes beside PCA codes and raw pixels; with
z=2, analysis/codes_2d.png and analysis/pca_2d.png plot the test codes.

  python run.py --config configs/ae_mnist.py                 # z = 32
  python run.py --config configs/ae_mnist.py:latent=2        # z = 2, 8, 32 in the experiment
  python run.py --config configs/ae_mnist.py:smoke           # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, latent=32)
  c = config_defaults.autoencoder_config()  # every key (conv_features: kind='conv' only)
  c.method = 'autoencoder'
  c.dataset = 'mnist5k'
  config_defaults.set_schedule(c, 100, 5_000, log_every=100, eval_every=1_000,
                               checkpoint_every=1_000)
  c.model.update(kind='mlp', latent_dim=arg.latent, hidden_dims=(512, 256), activation='relu',
                 code_activation='linear')
  c.loss = dict(reconstruction='cross_entropy', sparsity='none', sparsity_weight=0.0,
                sparsity_target=0.05, weight_decay=0.0)
  c.noise = dict(kind='none', level=0.0)
  c.optimizer = dict(name='adam', learning_rate=1e-3, schedule='cosine', grad_clip_norm=None)
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
  return c
