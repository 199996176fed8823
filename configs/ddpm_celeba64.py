"""DDPM on CelebA faces at 64x64 (TFDS `celeb_a`), for users who have the data and a GPU.

NOT RUN HERE: no GPU and no CelebA on this machine; only its :smoke variant runs, in the
tests, under TFDS's mocking. No result is claimed.

The recipe is the CelebA 64x64 model of Song et al. 2021 (DDIM, Appendix D.1): Ho et al.'s
U-Net and training (T = 1000, linear betas, the simple loss, Adam 2e-4, batch 128, EMA 0.9999,
dropout 0.1) with resolution mults 1, 2, 2, 2, 4 (64 .. 4 px), attention at 16x16, and
500,000 steps; sampled with DDIM (eta = 0), 100 steps here. The faces are a centred
128-pixel crop of the 218x178 photographs, resized to 64 (config.data.center_crop /
image_size); DDIM's own crop sits a little lower on the face. FID and KID are in ImageNet
VGG16 features, not Inception's, so not comparable with the paper's FID (Song et al. 2021,
Table 1: 9.17 at 50 DDIM steps, 6.53 at 100, 3.51 at 1,000, 50,000 samples; quoted, not
re-derived here). celeb_a cannot be downloaded here: prepare it where there is network (`tfds
build celeb_a --file_format=array_record`, needs tensorflow).

  python run.py --config configs/ddpm_celeba64.py
  python run.py --config configs/ddpm_celeba64.py:smoke   # tests run it under TFDS mocking
"""
from configs import ddpm_cifar10
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = ddpm_cifar10.get_config()        # Ho et al.'s diffusion, optimizer and evaluation
  c.dataset = 'celeb_a'
  c.data.eval_split = 'validation'
  c.data.test_split = 'test'
  c.data.center_crop = 128
  c.data.image_size = 64
  config_defaults.set_schedule(c, 128, 500_000, log_every=100, eval_every=50_000,
                               checkpoint_every=10_000)
  ddpm_cifar10.natural_image_unet(c, channel_mults=(1, 2, 2, 2, 4))
  c.optimizer.warmup_steps = 5_000
  c.sampler.update(kind='ddim', steps=100, eta=0.0, guidance=0.0)
  if arg.smoke:
    config_defaults.diffusion_smoke(c)
  return c
