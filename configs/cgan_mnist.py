"""Class-conditional DCGAN on mnist5k (Mirza & Osindero 2014 conditioning on DCGAN networks).

The one-hot label is concatenated to the generator's noise and, as constant feature maps, to
the discriminator's input; samples cycle through the classes, and the eval pictures include a
grid with one row per class (`samples_by_class`). Otherwise exactly configs/dcgan_mnist.py.

  python run.py --config configs/cgan_mnist.py
  python run.py --config configs/cgan_mnist.py:smoke     # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'gan'
  c.dataset = 'mnist5k'
  c.batch_size = 64
  c.num_train_steps = 5_000
  c.log_every_steps = 100
  c.eval_every_steps = 1_000
  c.checkpoint_every_steps = 1_000
  c.ema_decay = 0.999

  c.model = dict(kind='dcgan', latent_dim=100, prior='normal', features=64, conditional=True,
                 g_hidden_dims=(1200, 1200), d_hidden_dims=(240, 240),
                 d_norm='batch', spectral_norm=False, conv_impl='fast', dtype='float32')
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0)
  c.g_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.eval.batch_size = 100
  c.eval.sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall',
                                'parzen')
  c.viz = dict(num_samples=100, interpolation_rows=8, interpolation_steps=10)

  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c

