"""WGAN-GP (Gulrajani et al. 2017) on mnist5k: the DCGAN networks, a critic without batch norm.

Algorithm 1 of the paper: n_critic = 5 critic updates per generator update, each on its own
real batch of 64 (so one step consumes batch_size = 320 real digits), gradient penalty
lambda = 10 at random interpolates, Adam(1e-4, b1=0.5, b2=0.9) for both players. Batch norm
in the critic would make the per-example penalty meaningless (Sec. 4), hence d_norm='none'.

  python run.py --config configs/wgan_gp_mnist.py
  python run.py --config configs/wgan_gp_mnist.py:smoke  # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()
  c.batch_size = 320                   # 5 critic batches of 64
  c.num_train_steps = 1_000            # 5,000 critic updates; 274 ms per step on 2 CPU cores
  c.eval_every_steps = c.checkpoint_every_steps = 500
  c.model.d_norm = 'none'
  c.loss = dict(kind='wgan_gp', n_critic=5, gp_weight=10.0)
  c.g_optimizer.learning_rate = c.d_optimizer.learning_rate = 1e-4
  c.g_optimizer.b2 = c.d_optimizer.b2 = 0.9
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
