"""WGAN-GP (Gulrajani et al. 2017) on mnist5k: the DCGAN networks, a critic without batch norm.

Algorithm 1 of the paper: n_critic = 5 critic updates per generator update, each on its own
real batch of 64 (so one step consumes batch_size = 320 real digits), gradient penalty
lambda = 10 at random interpolates, Adam(1e-4, b1=0.5, b2=0.9) for both players. Batch norm in
the critic would make the per-example penalty meaningless (Sec. 4), hence d_norm='none'.
Otherwise the DCGAN networks of configs/dcgan_mnist.py (z = 100, Gaussian, base width 64), an
EMA (0.999) of the generator for samples, 1,000 steps.

  python run.py --config configs/wgan_gp_mnist.py
  python run.py --config configs/wgan_gp_mnist.py:smoke  # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()     # every GAN key (and model.conv_impl / d_conv_impl)
  c.method = 'gan'
  c.dataset = 'mnist5k'
  # 5 critic batches of 64 a step; 1,000 steps = 5,000 critic updates (274 ms a step on 2 cores)
  config_defaults.set_schedule(c, 320, 1_000, log_every=100, eval_every=500,
                               checkpoint_every=500)
  c.model.update(kind='dcgan', latent_dim=100, prior='normal', conditional=False, features=64,
                 d_norm='none', spectral_norm=False)
  c.loss = dict(kind='wgan_gp', n_critic=5, gp_weight=10.0, r1_gamma=0.0)  # R1: not with WGAN-GP
  c.g_optimizer = dict(name='adam', learning_rate=1e-4, b1=0.5, b2=0.9, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=1e-4, b1=0.5, b2=0.9, schedule='constant')
  c.ema_decay = 0.999                  # of the generator, for samples; 0 turns it off
  c.augment.kind = 'none'              # D sees the images as they are (genlab/augment.py)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
