"""Class-conditional DCGAN on mnist5k (Mirza & Osindero 2014 conditioning on DCGAN networks).

The one-hot label is concatenated to the generator's noise and, as constant feature maps, to
the discriminator's input; samples cycle through the classes, and the eval pictures include a
grid with one row per class (`samples_by_class`). Otherwise exactly configs/dcgan_mnist.py.

  python run.py --config configs/cgan_mnist.py
  python run.py --config configs/cgan_mnist.py:smoke     # a few seconds, for tests
"""
from configs import dcgan_mnist
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = dcgan_mnist.get_config()         # networks, loss, optimizers, EMA and schedule
  c.model.conditional = True
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
