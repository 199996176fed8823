"""StyleGAN2 with ADA (Karras et al. 2020b, "Training Generative Adversarial Networks with
Limited Data") on CIFAR-10 (TFDS `cifar10`, 32x32x3), for users who have the data and a GPU.

NOT RUN HERE: no GPU and no CIFAR-10 on this machine; only its :smoke variant runs, in the
tests, under TFDS's mocking. No result is claimed.

The recipe is stylegan2-ada-pytorch's cfg 'cifar' (train.py cfg_specs, "the tuned
configuration" for CIFAR-10 on 1 or 2 GPUs):
  batch 64, minibatch-stddev group 32, fmaps 1: channel_base 32768, channel_max 512 (512
  channels at every resolution up to 32), 2 mapping layers, z and w 512
  Adam lr 0.0025, betas (0, 0.99), eps 1e-8; R1 gamma 0.01 every 16 D steps
  EMA half-life 500 kimg, ramped up at 0.05; 100,000 kimg = 1,562,500 steps of 64
and what train.py sets for 'cifar' only: no path-length regularisation (pl_weight 0), no style
mixing, the 'orig' discriminator (no residual connections). As every cfg there: the top 4
resolutions in reduced precision with activations clamped at 256 (here bfloat16,
model.num_bf16_res=4; the reference's float16), and ADA with the default pipeline 'bgc' (all 12
ops), target 0.6, adjusted every 4 steps at 500 kimg per unit.

Where it differs: unconditional (genlab's StyleGAN2 has no class input; the reference's
cifar10.pkl is the class-conditional --cond=1 run); no x-flips (--mirror=0, the reference's
default). cifar10 cannot be downloaded here: prepare it where there is network (`tfds build
cifar10 --file_format=array_record`, needs tensorflow). The test split's halves are the eval
and test splits, as configs/dcgan_cifar10.py; FID and KID at the end are in ImageNet VGG16
features (not Inception's: not comparable with papers).

  python run.py --config configs/stylegan2_cifar10.py
  python run.py --config configs/stylegan2_cifar10.py:smoke   # tests run it under TFDS mocking
"""
from configs import stylegan2_folder
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.stylegan2_config()   # every stylegan2 key
  c.method = 'stylegan2'
  c.dataset = 'cifar10'
  c.data.eval_split = 'test[:50%]'
  c.data.test_split = 'test[50%:]'
  config_defaults.set_schedule(c, 64, 100_000_000 // 64, log_every=100,
                               eval_every=200_000 // 64, checkpoint_every=50_000 // 64)
  c.model.update(z_dim=512, w_dim=512, mapping_layers=2, mapping_lr_multiplier=0.01,
                 w_avg_beta=0.995, channel_base=32768, channel_max=512, mbstd_group_size=32,
                 mbstd_num_channels=1, d_architecture='orig', num_bf16_res=4,
                 conv_clamp=256.0)
  # pl_interval 4 still sets G's lazy-regularisation Adam correction, as the reference's
  # G_reg_interval does with pl_weight 0 (its Greg phase then computes nothing).
  c.loss = dict(r1_gamma=0.01, r1_interval=16, pl_weight=0.0, pl_interval=4,
                pl_batch_shrink=2, pl_decay=0.01, style_mixing_prob=0.0)
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=0.0025, b1=0.0, b2=0.99, eps=1e-8,
                      schedule='constant')
  c.ema_kimg = 500.0
  c.ema_rampup = 0.05
  stylegan2_folder.ada(c)                 # the reference's default ADA, pipeline 'bgc'
  stylegan2_folder.natural_images(c, arg.smoke)
  return c
