"""Class-conditional DCGAN on mnist5k (Mirza & Osindero 2014 conditioning on DCGAN networks).

The one-hot label is concatenated to the generator's noise and, as constant feature maps, to
the discriminator's input; samples cycle through the classes, and the eval pictures include a
grid with one row per class (`samples_by_class`). Otherwise configs/dcgan_mnist.py, as it was
before R1 joined it: no R1 and 5,000 steps, the recipe measured in the README (FID-in-domain 19).

  python run.py --config configs/cgan_mnist.py
  python run.py --config configs/cgan_mnist.py:smoke     # a few seconds, for tests
"""
from configs import dcgan_mnist
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = dcgan_mnist.get_config()         # networks, loss, optimizers and EMA
  c.model.conditional = True
  c.loss.r1_gamma = 0.0
  config_defaults.set_schedule(c, 64, 5_000, log_every=100, eval_every=1_000,
                               checkpoint_every=1_000)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
