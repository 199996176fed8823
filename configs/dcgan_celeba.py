"""DCGAN (Radford et al. 2016) on CelebA faces (TFDS `celeb_a`), 64x64, for users who have it.

As the DCGAN reference code: a centered 108x108 crop of the 218x178 photographs, resized to
64x64 (config.data.center_crop / image_size, applied once when the split is decoded). Networks
z -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 and the mirror-image discriminator;
z = 100, Adam(2e-4, b1=0.5), batch 128 (Radford et al.), the non-saturating loss, an EMA of the
generator, 50,000 steps. celeb_a cannot be downloaded here: prepare it where there is network
(`tfds build celeb_a --file_format=array_record`, needs tensorflow). It has no class labels, so
the conditional variant is refused; only the Parzen estimate is on.

  python run.py --config configs/dcgan_celeba.py
  python run.py --config configs/dcgan_celeba.py:smoke   # tests run it under TFDS mocking
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()     # every GAN key (and model.conv_impl / d_conv_impl)
  c.method = 'gan'
  c.dataset = 'celeb_a'
  c.data.center_crop = 108
  c.data.image_size = 64
  config_defaults.set_schedule(c, 128, 50_000, log_every=100, eval_every=5_000,
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
