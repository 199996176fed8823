"""DCGAN (Radford et al. 2016) on CIFAR-10 (TFDS `cifar10`, 32x32x3), for users who have it.

cifar10 cannot be downloaded here: prepare it where there is network (`tfds build cifar10
--file_format=array_record`, needs tensorflow) and point --config.data_dir at it.
Networks: z -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 and the mirror-image discriminator,
with the recipe of configs/dcgan_mnist.py: z = 100, Adam(2e-4, b1=0.5), batch 64, the
non-saturating loss, an EMA of the generator; 50,000 steps. The digit-classifier metrics do
not apply to natural images, so only the Parzen estimate is on.

  python run.py --config configs/dcgan_cifar10.py
  python run.py --config configs/dcgan_cifar10.py:smoke  # tests run it under TFDS mocking
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()     # every GAN key (and model.conv_impl / d_conv_impl)
  c.method = 'gan'
  c.dataset = 'cifar10'
  c.data.eval_split = 'test[:50%]'
  c.data.test_split = 'test[50%:]'
  config_defaults.set_schedule(c, 64, 50_000, log_every=100, eval_every=5_000,
                               checkpoint_every=5_000)
  c.model.update(kind='dcgan', latent_dim=100, prior='normal', conditional=False, features=64,
                 d_norm='batch', spectral_norm=False)
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0,  # gp_weight: wgan_gp only
                r1_gamma=0.0)
  c.g_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.ema_decay = 0.999                  # of the generator, for samples; 0 turns it off
  c.augment.kind = 'none'              # D sees the images as they are (genlab/augment.py)
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('fid_vgg16', 'kid_vgg16', 'parzen')  # ImageNet VGG16 features
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
