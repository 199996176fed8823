"""StyleGAN2 (Karras et al. 2020, config F scaled down) on mnist5k, sized to train on a CPU.

The networks are stylegan2-ada-pytorch's for one GPU at 32 px (train.py, cfg 'auto': batch
min(4096 // res, 32) = 32, lr 0.0025, EMA half-life batch x 10 / 32 = 10 kimg ramped up at
0.05, 2 mapping layers), narrower than its channel_base 16384 (512 channels at every
resolution), which a 2-core CPU cannot train: channel_base 512, channel_max 64 (64 channels at
4 and 8 px, 32 at 16 px, 16 at 32 px) and z, w of 64 dimensions. The 28x28 digits are padded
with black to 32x32 for the networks and samples are cropped back, so the metrics are those
of the other mnist5k GANs.

The training recipe is the reference's own for 32 px (cfg 'cifar': no path-length
regularisation, no style mixing, the 'orig' D without residual skips, minibatch-stddev over
the whole batch of 32) with two changes for 4,000 digits, as for dcgan_mnist:
- R1 gamma 1 (lazy, every 16 D steps) instead of 0.01, and
- DiffAugment (Zhao et al. 2020: colour, translation, cutout) of everything D sees.
With the 'auto' gamma (0.0064) and no augmentation, D memorised the training digits within
2,000 steps and every sample was one shape (README, "StyleGAN2 on mnist5k"); with these, the
samples are varied digits by step 3,000, and at step 10,000 the test FID-in-domain is 30.3
and the classifier score 8.39. A step took 0.24 s on this 2-core CPU (61 min for the run,
partly beside another job); the networks now run in 4 slices of the batch there
(batch_split='auto', the same function), 0.18-0.23 s a step in `python -m genlab.bench`.

  python run.py --config configs/stylegan2_mnist.py
  python run.py --config configs/stylegan2_mnist.py:augment=ada    # or augment=none
  python run.py --config configs/stylegan2_mnist.py:smoke    # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, augment='diffaugment')
  c = config_defaults.stylegan2_config()   # every stylegan2 key
  c.method = 'stylegan2'
  c.dataset = 'mnist5k'
  config_defaults.set_schedule(c, 32, 10_000, log_every=100, eval_every=1_000,
                               checkpoint_every=1_000)
  c.model.update(z_dim=64, w_dim=64, mapping_layers=2, mapping_lr_multiplier=0.01,
                 w_avg_beta=0.995, channel_base=512, channel_max=64, mbstd_group_size=32,
                 mbstd_num_channels=1, d_architecture='orig', num_bf16_res=0,
                 conv_clamp=None)
  # pl_weight 0 and style_mixing_prob 0 as cfg 'cifar' (config F's are 2 and 0.9).
  c.loss = dict(r1_gamma=1.0, r1_interval=16, pl_weight=0.0, pl_interval=4,
                pl_batch_shrink=2, pl_decay=0.01, style_mixing_prob=0.0)
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=0.0025, b1=0.0, b2=0.99, eps=1e-8,
                      schedule='constant')
  c.ema_kimg = 32 * 10 / 32
  c.ema_rampup = 0.05
  c.eval.batch_size = 128   # a multiple of the minibatch-stddev group
  # What D sees (genlab/augment.py), as for dcgan_mnist: no flips or quarter turns for digits.
  c.augment.update(kind=arg.augment, policy=('color', 'translation', 'cutout'),
                   ops=('xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness', 'contrast'),
                   p=0.0, adaptive=True, target=0.6, interval=4, kimg=100.0)
  if arg.smoke:
    config_defaults.stylegan2_smoke(c)
  return c
