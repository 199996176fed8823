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
  c = config_defaults.gan_config()
  c.dataset = 'cifar10'
  c.data.eval_split = 'test[:50%]'
  c.data.test_split = 'test[50%:]'
  c.num_train_steps = 50_000
  c.eval_every_steps = c.checkpoint_every_steps = 5_000
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('parzen',)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
