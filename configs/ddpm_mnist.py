"""DDPM (Ho et al. 2020) on mnist5k, sized to train on a 2-core CPU in under 30 minutes.

Ho et al.'s recipe (T = 1000, linear betas 1e-4 .. 0.02, epsilon prediction with the simple
loss, an EMA of the weights for samples), with a U-Net narrowed for 28x28 digits and run on
2x2 patches (model.patch_size, space to depth: 14x14x4 in): 32 channels at 14x14 and 64 at
7x7, one residual block per level, attention at 7x7 and in the middle, no dropout (Ho et al.'s
0.1 is for 800,000 steps; this run is 4,000). 0.7 M parameters. Adam 1e-3 with 200 warm-up
steps and a cosine decay, gradients clipped at norm 1; EMA 0.999 (0.9999 is for runs of
hundreds of thousands of steps). Samples during training and in the metrics use DDIM with 50
steps and eta = 1 (Song et al. 2021; the ancestral sampler with the posterior variance, over
50 respaced steps): on an earlier checkpoint it gave FID 83 where eta = 0 gave 108
(experiments/ho2020_ddpm). --config.sampler.kind=ancestral --config.sampler.steps=1000 gives
Ho et al.'s sampler.

  python run.py --config configs/ddpm_mnist.py
  python run.py --config configs/ddpm_mnist.py:smoke    # a few seconds, for tests
  python run.py --config configs/ddpm_mnist.py --mode=sample --workdir W --num_samples 1000 \
      --config.sampler.kind=ancestral --config.sampler.steps=1000
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.diffusion_config()
  c.method = 'diffusion'
  c.dataset = 'mnist5k'
  config_defaults.set_schedule(c, 64, 4_000, log_every=100, eval_every=1_000,
                               checkpoint_every=1_000)
  c.model.update(channels=32, channel_mults=(1, 2), num_res_blocks=1, patch_size=2,
                 attention_resolutions=(7,), dropout=0.0, norm_groups=8, conditional=False,
                 downsample='conv')
  c.diffusion.update(timesteps=1000, schedule='linear', beta_start=1e-4, beta_end=0.02,
                     variance='beta', clip_denoised=True)
  c.sampler.update(kind='ddim', steps=50, eta=1.0, guidance=0.0)
  c.optimizer = dict(name='adam', learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8,
                     schedule='cosine', warmup_steps=200, grad_clip_norm=1.0)
  c.ema_decay = 0.999
  c.eval.batch_size = 100
  c.eval.bound_timesteps = 10
  c.eval.test_bound_timesteps = 100
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  if arg.smoke:
    config_defaults.diffusion_smoke(c)
  return c
