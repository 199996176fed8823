"""DCGAN (Radford et al. 2016) on mnist5k, sized for 28x28 digits.

Generator: z (100, Gaussian) -> project to 7x7x128 -> BN-ReLU -> 4x4 stride-2 transposed conv
to 14x14x64 -> BN-ReLU -> to 28x28x1, tanh. Discriminator: 4x4 stride-2 convs 64, 128 with
leaky ReLU (0.2) and BN after the first -> linear logit. Adam(2e-4, b1=0.5), batch 64, the
non-saturating loss, an EMA (0.999) of the generator for samples.

Additions to Radford et al.'s recipe, for a data set of 4,000 digits: R1 on the real images
(Mescheder et al. 2018, Eq. 9, gamma = 1, every step), and 40,000 steps instead of 5,000, the
last 20,000 with the learning rates decaying linearly to 0. Without R1, D wins (train logits
+3.7 / -3.5 at step 5,000) and the samples are broken strokes (test FID-in-domain 140 at step
5,000); with it, 83 at step 5,000, 50 at 12,000, 36 at 20,000 and, after the decay, 28 at
40,000 (README, "GANs on little data"; a step takes 107 ms on this 2-core CPU, 72 min in all).
How the strided (transposed) convolutions are computed is an implementation choice of
genlab/config_defaults.py: `model.conv_impl='auto'` computes them on the CPU as sub-pixel
convolutions (`d_conv_impl='auto'`: as one GEMM), the same functions with the same parameters,
several times faster there than XLA's, and on GPU and TPU with the backend's own (`'xla'`).

  python run.py --config configs/dcgan_mnist.py
  python run.py --config configs/dcgan_mnist.py:smoke    # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, augment='none')
  c = config_defaults.gan_config()     # every GAN key (and model.conv_impl / d_conv_impl)
  c.method = 'gan'
  c.dataset = 'mnist5k'
  config_defaults.set_schedule(c, 64, 40_000, log_every=100, eval_every=2_000,
                               checkpoint_every=2_000)
  c.model.update(kind='dcgan', latent_dim=100, prior='normal', conditional=False, features=64,
                 d_norm='batch', spectral_norm=False)
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0,  # gp_weight: wgan_gp only
                r1_gamma=1.0)
  # Constant for 20,000 steps, then linearly to 0 over the last 20,000 (as CycleGAN decays).
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999,
                      schedule='linear_decay', decay_steps=20_000)
  c.ema_decay = 0.999                  # of the generator, for samples; 0 turns it off
  # What D sees (genlab/augment.py): DiffAugment's policy, or ADA's ops without the flips,
  # the quarter turns and the colour ops that a grey digit does not have.
  c.augment.update(kind=arg.augment, policy=('color', 'translation', 'cutout'),
                   ops=('xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast'),
                   kimg=100.0)   # p can move 0 -> 1 in 1,600 steps (500 kimg in the paper)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
