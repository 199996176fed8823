"""StyleGAN2 (Karras et al. 2020) with ADA (Karras et al. 2020b) on CelebA faces (TFDS
`celeb_a`) at 64x64, for users who have the data and a GPU.

NOT RUN HERE: no GPU and no CelebA on this machine; only its :smoke variant runs, in the
tests, under TFDS's mocking. No result is claimed.

The recipe is stylegan2-ada-pytorch's cfg 'auto' (train.py, cfg_specs and the lines after it)
for one GPU at res = 64:
  batch   max(min(gpus min(4096 // res, 32), 64), gpus) = 32
  mbstd   min(batch // gpus, 4) = 4             (minibatch-stddev group)
  fmaps   0.5 (res < 512): channel_base 0.5 x 32768 = 16384, channel_max 512
  lr      0.0025 (res < 1024), Adam betas (0, 0.99), eps 1e-8, both players
  gamma   0.0002 res^2 / batch = 0.0256         (R1, every 16 D steps)
  ema     batch x 10 / 32 = 10 kimg, ramp-up 0.05
  map     2 mapping layers; z, w 512; 25,000 kimg = 781,250 steps of 32
and the reference's fixed settings: path length weight 2 every 4 G steps on half the batch,
style mixing 0.9, residual D, the top 4 resolutions in reduced precision with activations
clamped at 256 (here bfloat16, model.num_bf16_res=4; the reference's float16), ADA with its
default pipeline 'bgc' (all 12 ops), target 0.6, adjusted every 4 steps at 500 kimg per unit.
On 2 or more GPUs 'auto' takes batch 64, gamma 0.0128 and ema 20:
--config.batch_size=64 --config.loss.r1_gamma=0.0128 --config.ema_kimg=20.

The data path of configs/dcgan_celeba.py: a centred 108x108 crop of the 218x178 photographs,
resized to 64x64 (the DCGAN convention; the reference has no CelebA-64 setting). Unconditional,
no x-flips (the reference's --mirror=0 default). celeb_a cannot be downloaded here: prepare it
where there is network (`tfds build celeb_a --file_format=array_record`, needs tensorflow).
Metrics at the end: FID and KID in ImageNet VGG16 features (not Inception's: not comparable
with papers), and the path length after training:
python -m genlab.metrics.ppl --config configs/stylegan2_celeba64.py --workdir DIR.

  python run.py --config configs/stylegan2_celeba64.py
  python run.py --config configs/stylegan2_celeba64.py:smoke   # tests run it under TFDS mocking
"""
from configs import stylegan2_folder
from genlab import config_defaults

RES = 64


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.stylegan2_config()   # every stylegan2 key
  c.method = 'stylegan2'
  c.dataset = 'celeb_a'
  c.data.center_crop = 108
  c.data.image_size = RES
  # cfg 'auto' at 64 px for one GPU (above); :smoke, at its 16 px
  stylegan2_folder.reference_recipe(c, stylegan2_folder.SMOKE_RES if arg.smoke else RES)
  stylegan2_folder.natural_images(c, arg.smoke)
  return c
