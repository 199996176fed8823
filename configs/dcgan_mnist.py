"""DCGAN (Radford et al. 2016) on mnist5k, sized for 28x28 digits.

Generator: z (100, Gaussian) -> project to 7x7x128 -> BN-ReLU -> 4x4 stride-2 transposed conv
to 14x14x64 -> BN-ReLU -> to 28x28x1, tanh. Discriminator: 4x4 stride-2 convs 64, 128 with
leaky ReLU (0.2) and BN after the first -> linear logit. Adam(2e-4, b1=0.5), batch 64, the
non-saturating loss, an EMA of the generator for samples. `model.conv_impl='fast'` computes the
strided (transposed) convolutions as sub-pixel / space-to-depth convolutions, the same function
with the same parameters, several times faster on CPU than XLA's (`'xla'`).

  python run.py --config configs/dcgan_mnist.py
  python run.py --config configs/dcgan_mnist.py:smoke    # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
