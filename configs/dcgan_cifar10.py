"""DCGAN (Radford et al. 2016) on CIFAR-10 (TFDS `cifar10`, 32x32x3), for users who have it.

cifar10 cannot be downloaded here: prepare it where there is network (`tfds build cifar10
--file_format=array_record`, needs tensorflow) and point --config.data_dir at it. Networks:
z -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 and the mirror-image discriminator. The
digit-classifier metrics do not apply to natural images, so only the Parzen estimate is on.

  python run.py --config configs/dcgan_cifar10.py
  python run.py --config configs/dcgan_cifar10.py:smoke  # tests run it under TFDS mocking
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'gan'
  c.dataset = 'cifar10'
  c.data.eval_split = 'test[:50%]'
  c.data.test_split = 'test[50%:]'
  c.batch_size = 64
  c.num_train_steps = 50_000
  c.log_every_steps = 100
  c.eval_every_steps = 5_000
  c.checkpoint_every_steps = 5_000
  c.ema_decay = 0.999

  c.model = dict(kind='dcgan', latent_dim=100, prior='normal', features=64, conditional=False,
                 g_hidden_dims=(1200, 1200), d_hidden_dims=(240, 240),
                 d_norm='batch', spectral_norm=False, conv_impl='fast', dtype='float32')
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0)
  c.g_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.eval.batch_size = 100
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('parzen',)
  c.viz = dict(num_samples=100, interpolation_rows=8, interpolation_steps=10)

  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c

