"""DCGAN (Radford et al. 2016) on CelebA faces (TFDS `celeb_a`), 64x64, for users who have it.

As the DCGAN reference code: a centered 108x108 crop of the 218x178 photographs, resized to
64x64 (config.data.center_crop / image_size, applied once when the split is decoded).
Networks z -> 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 -> 64x64x3 and the mirror-image
discriminator. celeb_a cannot be downloaded here: prepare it where there is network (`tfds
build celeb_a --file_format=array_record`, needs tensorflow). It has no class labels, so the
conditional variant is refused; only the Parzen estimate is on.

  python run.py --config configs/dcgan_celeba.py
  python run.py --config configs/dcgan_celeba.py:smoke   # tests run it under TFDS mocking
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()
  c.dataset = 'celeb_a'
  c.data.center_crop = 108
  c.data.image_size = 64
  c.batch_size = 128
  c.num_train_steps = 50_000
  c.eval_every_steps = c.checkpoint_every_steps = 5_000
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('parzen',)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
