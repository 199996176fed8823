"""DDPM (Ho et al. 2020) on CIFAR-10 (TFDS `cifar10`, 32x32x3), for users who have the data
and a GPU.

NOT RUN HERE: no GPU and no CIFAR-10 on this machine; only its :smoke variant runs, in the
tests, under TFDS's mocking. No result is claimed.

The recipe is Ho et al.'s CIFAR-10 model (Sec. 4 and Appendix B): T = 1000, linear betas
1e-4 .. 0.02, the simple loss; U-Net with 128 channels, mults 1, 2, 2, 2 (32, 16, 8, 4 px), two
residual blocks per level, attention at 16x16, dropout 0.1 (35.7 M parameters); Adam 2e-4 with
5,000 warm-up steps, gradients clipped at norm 1, batch 128, 800,000 steps, EMA 0.9999; the
ancestral sampler over all 1,000 steps with variance beta_t. Where it differs: no random
horizontal flips (genlab's data layer has none); the test split's halves are the eval and test
splits (as configs/dcgan_cifar10.py); FID and KID are in ImageNet VGG16 features, not
Inception's, so not comparable with papers.

Reference figures (Inception features, 50,000 samples against the training set): FID 3.17,
Inception score 9.46, test NLL <= 3.75 bits/dim (Ho et al. 2020, Table 1); the same network
sampled with DDIM, eta = 0: FID 4.67 at 50 steps, 4.04 at 1,000 (Song et al. 2021, Table 1).
Here `--config.sampler.kind=ddim --config.sampler.steps=50` samples it the DDIM way, and the
test bound is exact over all T steps (eval.test_bound_timesteps = 1000).

  python run.py --config configs/ddpm_cifar10.py
  python run.py --config configs/ddpm_cifar10.py:smoke    # tests run it under TFDS mocking
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.diffusion_config()
  c.method = 'diffusion'
  c.dataset = 'cifar10'
  c.data.eval_split = 'test[:50%]'
  c.data.test_split = 'test[50%:]'
  config_defaults.set_schedule(c, 128, 800_000, log_every=100, eval_every=50_000,
                               checkpoint_every=10_000)
  natural_image_unet(c, channel_mults=(1, 2, 2, 2))
  c.diffusion.update(timesteps=1000, schedule='linear', beta_start=1e-4, beta_end=0.02,
                     variance='beta', clip_denoised=True)
  c.sampler.update(kind='ancestral', steps=1000, eta=0.0, guidance=0.0)
  c.optimizer = dict(name='adam', learning_rate=2e-4, b1=0.9, b2=0.999, eps=1e-8,
                     schedule='constant', warmup_steps=5_000, grad_clip_norm=1.0)
  c.ema_decay = 0.9999
  c.eval.bound_timesteps = 20
  c.eval.test_bound_timesteps = 1000
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('fid_vgg16', 'kid_vgg16')
  c.eval.num_metric_samples = 5000
  if arg.smoke:
    config_defaults.diffusion_smoke(c)
  return c


def natural_image_unet(c, channel_mults):
  """Ho et al.'s U-Net for natural images: 128 channels, two residual blocks per level,
  attention at 16x16, dropout 0.1."""
  c.model.update(channels=128, channel_mults=channel_mults, num_res_blocks=2, patch_size=1,
                 attention_resolutions=(16,), dropout=0.1, norm_groups=32, conditional=False,
                 downsample='conv')
