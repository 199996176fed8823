"""Sparse autoencoder (Ng 2011, "Sparse autoencoder", CS294A notes) on mnist5k.

One hidden layer of 196 sigmoid units between 784 inputs and 784 sigmoid outputs, Ng's
objective: the squared error 1/2 ||xh - x||^2, weight decay lambda/2 ||W||^2 (lambda = 3e-3)
and a sparsity penalty on the hidden activations, either the KL penalty
beta * sum_j KL(rho || rhohat_j) towards a mean activation rho = 0.1 with beta = 3 (the
values of Ng's exercise), or an L1 penalty lambda_1 * sum_j |h_j| (lambda_1 = 0.1).
Adam(1e-3) with a cosine decay, batch 100, 20,000 steps. results.json holds the mean
activation (against rho), the share of near-silent units (mean activation < 0.01) and the
reconstruction error; analysis/features.png shows each unit's input weights.

  python run.py --config configs/sae_mnist.py                     # KL, rho = 0.1, beta = 3
  python run.py --config configs/sae_mnist.py:penalty=l1          # L1, lambda_1 = 0.1
  python run.py --config configs/sae_mnist.py:smoke               # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, penalty='kl')
  c = config_defaults.autoencoder_config()  # every key (conv_features: kind='conv' only)
  c.method = 'autoencoder'
  c.dataset = 'mnist5k'
  # features keep smoothing from 5k to 20k steps
  config_defaults.set_schedule(c, 100, 20_000, log_every=100, eval_every=4_000,
                               checkpoint_every=4_000)
  # No hidden layer: the code is the 196 sigmoid units (`activation` would be the hidden one's).
  c.model.update(kind='mlp', latent_dim=196, hidden_dims=(), activation='relu',
                 code_activation='sigmoid')
  c.loss = dict(reconstruction='mse', sparsity=arg.penalty,
                sparsity_weight=3.0 if arg.penalty == 'kl' else 0.1, sparsity_target=0.1,
                weight_decay=3e-3)
  c.noise = dict(kind='none', level=0.0)
  c.optimizer = dict(name='adam', learning_rate=1e-3, schedule='cosine', grad_clip_norm=None)
  if arg.smoke:
    config_defaults.autoencoder_smoke(c)
    c.model.latent_dim = 16
  return c
