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
  c = config_defaults.base_config()
  c.method = 'gan'
  c.dataset = 'mnist5k'
  c.batch_size = 320                  # 5 critic batches of 64
  c.num_train_steps = 5_000
  c.log_every_steps = 100
  c.eval_every_steps = 1_000
  c.checkpoint_every_steps = 1_000
  c.ema_decay = 0.999

  c.model = dict(kind='dcgan', latent_dim=100, prior='normal', features=64, conditional=False,
                 g_hidden_dims=(1200, 1200), d_hidden_dims=(240, 240),
                 d_norm='none', spectral_norm=False, conv_impl='fast', dtype='float32')
  c.loss = dict(kind='wgan_gp', n_critic=5, gp_weight=10.0)
  c.g_optimizer = dict(name='adam', learning_rate=1e-4, b1=0.5, b2=0.9, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=1e-4, b1=0.5, b2=0.9, schedule='constant')
  c.eval.batch_size = 100
  c.eval.sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall',
                                'parzen')
  c.viz = dict(num_samples=100, interpolation_rows=8, interpolation_steps=10)

  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c

