"""StyleGAN2 (Karras et al. 2020) with ADA (Karras et al. 2020b) on your own folder of images
(e.g. FFHQ), at a side `res` that is a power of two (default 256):

  PATH/train/     (any images PIL reads; non-square ones are squashed to res x res)

  python run.py --config configs/stylegan2_folder.py:path=/data/ffhq             # 256 px
  python run.py --config configs/stylegan2_folder.py:path=/data/ffhq,res=128
  python run.py --config configs/stylegan2_folder.py:smoke,path=DIR   # tiny, for tests

NOT RUN HERE: no GPU and no such data on this machine; only its :smoke variant runs, in the
tests, on a folder of random images. No result is claimed.

At res 256 the recipe is stylegan2-ada-pytorch's cfg 'paper256' (train.py cfg_specs: FFHQ and
LSUN Cat at 256x256 on 1-8 GPUs): batch 64, minibatch-stddev group 8, fmaps 0.5
(channel_base 16384, channel_max 512), Adam lr 0.0025, R1 gamma 1, EMA half-life 20 kimg
without ramp-up, 8 mapping layers. At any other side it is cfg 'auto' for one GPU (train.py,
after cfg_specs): batch = max(min(gpus min(4096 // res, 32), 64), gpus), group min(batch //
gpus, 4), fmaps 1 if res >= 512 else 0.5, lr 0.002 if res >= 1024 else 0.0025, gamma
0.0002 res^2 / batch, EMA batch x 10 / 32 kimg ramped up at 0.05, 2 mapping layers (res 64:
batch 32, gamma 0.0256, EMA 10; res 128: batch 32, gamma 0.1024, EMA 10). Both: z and w 512,
Adam betas (0, 0.99), R1 every 16 D steps, path length weight 2 every 4 G steps on half the
batch, style mixing 0.9, residual D, the top 4 resolutions in reduced precision with
activations clamped at 256 (here bfloat16; the reference's float16), 25,000 kimg, and ADA
with the default pipeline 'bgc' (all 12 ops), target 0.6, every 4 steps at 500 kimg per unit.

As the reference, the metrics compare with the training images (its fid50k_full): every split
reads PATH/train/ (--config.data.test_split=NAME for a held-out PATH/NAME/). Gray images are
made RGB. No x-flips of the data set (the reference's --mirror=1, which its FFHQ runs use, has
no genlab equivalent; ADA's xflip is an augmentation of what D sees). FID and KID at the end
are in ImageNet VGG16 features (not Inception's: not comparable with papers). For aligned
faces, the path length as the StyleGAN paper crops it:
python -m genlab.metrics.ppl --config configs/stylegan2_folder.py:path=... --workdir DIR --crop.
"""
from genlab import config_defaults
from genlab.errors import UserError

GPUS = 1
SMOKE_RES = 16   # the :smoke variants of the natural-image configs: cfg 'auto' at 16 px, shrunk
# ADA's default pipeline 'bgc' (train.py augpipe_specs): blit, geometric and colour ops.
ADA_BGC = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac', 'brightness',
           'contrast', 'lumaflip', 'hue', 'saturation')


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, path='~/stylegan2_data', res=256)
  res = arg.res
  if res < 4 or res & (res - 1):
    raise UserError(f'configs/stylegan2_folder.py:res={res}: StyleGAN2 makes square images whose '
                    'side is a power of two; give res=64, 128, 256 (or 512, 1024).')
  c = config_defaults.stylegan2_config()   # every stylegan2 key
  c.method = 'stylegan2'
  c.dataset = f'folder:{arg.path}'
  c.data.train_split = c.data.eval_split = c.data.test_split = 'train'
  c.data.image_size = res
  c.data.channels = 3
  reference_recipe(c, SMOKE_RES if arg.smoke else res)
  natural_images(c, arg.smoke)
  return c


def reference_recipe(c, res: int) -> None:
  """stylegan2-ada-pytorch's cfg 'paper256' at res 256, else 'auto' for GPUS GPUs, with its
  fixed settings and ADA (the module docstring); shared with configs/stylegan2_celeba64.py."""
  if res == 256:  # 'paper256'
    batch, group, channel_base, lr, gamma, ema, ramp, mapping = 64, 8, 16384, 0.0025, 1.0, \
        20.0, 0.0, 8
  else:           # 'auto'
    batch = max(min(GPUS * min(4096 // res, 32), 64), GPUS)
    group = min(batch // GPUS, 4)
    channel_base = int((1 if res >= 512 else 0.5) * 32768)
    lr = 0.002 if res >= 1024 else 0.0025
    gamma = 0.0002 * res ** 2 / batch
    ema, ramp, mapping = batch * 10 / 32, 0.05, 2
  config_defaults.set_schedule(c, batch, 25_000_000 // batch, log_every=100,
                               eval_every=200_000 // batch, checkpoint_every=50_000 // batch)
  c.model.update(z_dim=512, w_dim=512, mapping_layers=mapping, mapping_lr_multiplier=0.01,
                 w_avg_beta=0.995, channel_base=channel_base, channel_max=512,
                 mbstd_group_size=group, mbstd_num_channels=1, d_architecture='resnet',
                 num_bf16_res=4, conv_clamp=256.0)
  c.loss = dict(r1_gamma=gamma, r1_interval=16, pl_weight=2.0, pl_interval=4,
                pl_batch_shrink=2, pl_decay=0.01, style_mixing_prob=0.9)
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=lr, b1=0.0, b2=0.99, eps=1e-8,
                      schedule='constant')
  c.ema_kimg = ema
  c.ema_rampup = ramp
  ada(c)


def ada(c) -> None:
  """ADA as the reference trains by default: pipeline 'bgc', training_loop.py's ada_target 0.6,
  ada_interval 4, ada_kimg 500, p from 0."""
  c.augment.update(kind='ada', ops=ADA_BGC, p=0.0, adaptive=True, target=0.6, interval=4,
                   kimg=500.0)


def natural_images(c, smoke: bool) -> None:
  """The evaluation of the natural-image StyleGAN2 configs, and their :smoke variant: 16 px,
  config_defaults.stylegan2_smoke's networks and steps, the regularisers at every step (one
  compiled phase, not three: compiling is most of a smoke run). The folder and CelebA smokes
  are then the same programs, which XLA's compilation cache compiles once in a test session."""
  c.eval.batch_size = 64                 # a multiple of every minibatch-stddev group here
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('fid_vgg16', 'kid_vgg16')
  if smoke:
    config_defaults.stylegan2_smoke(c)
    c.data.image_size = SMOKE_RES
    c.loss.update(r1_interval=1, pl_interval=1)
    c.model.num_bf16_res = 0   # bfloat16 is for accelerators; XLA's CPU emulates it slowly
