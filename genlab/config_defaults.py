"""Config plumbing shared by configs/: the keys every config has, and the :smoke shrinking.

Each file in configs/ states its experiment's recipe (data set, networks, loss, optimizers,
batch size and steps). The family helpers here (`gan_config`, `autoencoder_config`,
`lm_config`) add the *key set* a method reads, so that every key can be overridden from the
command line whatever a config leaves out (e.g. the other network family's widths), and the
method tests have a runnable config: the networks, loss and optimizer at the values the method
uses when a key is absent, the evaluation and picture keys at genlab's defaults.
tests/test_configs.py checks that no config takes a recipe value from here.
"""
from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.method = ''
  c.seed = 0
  c.dataset = 'mnist5k'
  c.data_dir = ml_collections.FieldReference(None, field_type=str)
  # Placeholders: every config sets its own schedule (set_schedule below).
  c.batch_size = 100                  # global, over all devices and processes
  c.num_train_steps = 1000
  c.log_every_steps = 50
  c.eval_every_steps = 500
  c.checkpoint_every_steps = 500
  c.max_checkpoints_to_keep = 3
  # What a non-finite logged metric does (genlab/train.py): 'stop' the run (checkpoints before
  # it are kept), or 'rollback' to the last checkpoint, skip the batch that diverged and go
  # on, at most `max_rollbacks` times in a run.
  c.divergence = ml_collections.ConfigDict(dict(policy='stop', max_rollbacks=3))
  # Fault injection for the drills (tests/drills/): the batch first used at step
  # `nan_at_step` (0 = never) turns every parameter into NaN.
  c.debug = ml_collections.ConfigDict(dict(nan_at_step=0))

  c.data = ml_collections.ConfigDict()
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'     # periodic evaluation during training
  c.data.test_split = 'test'           # final evaluation -> results.json
  c.data.binarize = 'none'             # 'none' | 'dynamic' | 'static'
  c.data.center_crop = ml_collections.FieldReference(None, field_type=int)  # square side
  c.data.image_size = ml_collections.FieldReference(None, field_type=int)   # resize to side
  c.data.held_out_labels = ()          # classes removed from every split but test (anomalies)
  c.data.channels = ml_collections.FieldReference(None, field_type=int)  # 1 or 3: convert

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 100
  # Sample-quality metrics of any generative method (genlab/metrics/sample_metrics.py), in the
  # embedding of genlab's digit classifier: names from SAMPLE_METRICS, at each eval (on
  # data.eval_split) and at the end (on data.test_split, -> results.json).
  c.eval.sample_metrics = ()
  c.eval.test_sample_metrics = ()
  c.eval.num_metric_samples = 4000     # = the mnist5k train split, so real-vs-real compares
  c.eval.parzen_samples = 10_000       # Goodfellow et al. 2014 fit the windows on 10,000
  # CAS's training set of samples (conditional models): 1,000 a class for 10 classes. The
  # classifier recipe fixes the steps, so more samples cost sampling time, not training time.
  c.eval.cas_samples = 10_000
  c.eval.precision_recall_k = 3        # Kynkaanniemi et al. 2019
  c.eval.vgg_feature_size = 224        # fid_vgg16 / kid_vgg16 resize images to this
  c.eval.classifier_workdir = ''       # '': $GENLAB_CACHE/pretrained/classifier_mnist[-ARG];
                                       # trained there first if missing
  c.eval.classifier_arg = ''           # the --config argument of configs/classifier_mnist.py
  return c


def set_schedule(c: ml_collections.ConfigDict, batch_size: int, num_train_steps: int,
                 log_every: int, eval_every: int, checkpoint_every: int) -> None:
  """The batch size and the step counts of a run, in one line of a config."""
  c.batch_size = batch_size
  c.num_train_steps = num_train_steps
  c.log_every_steps = log_every
  c.eval_every_steps = eval_every
  c.checkpoint_every_steps = checkpoint_every


def smoke_sample_metrics(c: ml_collections.ConfigDict) -> None:
  """Small sample counts and a smoke classifier, for the :smoke variants of GAN configs."""
  c.eval.num_metric_samples = 64
  c.eval.parzen_samples = 64
  c.eval.cas_samples = 64
  c.eval.vgg_feature_size = 32
  c.eval.classifier_arg = 'smoke'


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """`--config file.py:smoke,foo=1` -> ConfigDict(smoke=True, foo=1) over `defaults`."""
  out = ml_collections.ConfigDict(defaults)
  for part in filter(None, (arg or '').split(',')):
    name, _, value = part.partition('=')
    if name not in out:
      from genlab.errors import UserError  # pylint: disable=g-import-not-at-top
      raise UserError(f'Unknown config argument {name!r}: this config takes {sorted(out)}.')
    if isinstance(out[name], bool):
      out[name] = value.lower() not in ('0', 'false', 'no') if value else True
    else:
      out[name] = type(out[name])(value)
  return out


# Neither a recipe nor a choice: what genlab/optim.py does when config.optimizer is absent.
def _neutral_optimizer(**keys) -> dict:
  return dict(name='adam', learning_rate=1e-3, schedule='constant', **keys)


def gan_config() -> ml_collections.ConfigDict:
  """Every key of method 'gan' (genlab/methods/gan.py) at the method's own defaults.

  `model` holds the keys of both network families (genlab/models/gan.py), so any of them can
  be overridden whatever model.kind is. The two keys that are an implementation choice, not a
  recipe: 'auto' computes DCGAN's strided convolutions, on the CPU, as sub-pixel convolutions
  in the generator (conv_impl='fast') and as one im2col GEMM in the discriminator
  (d_conv_impl='matmul'), the same functions with the same parameters, several times faster
  there than XLA's; on GPU and TPU, with the backend's own convolutions ('xla').
  """
  c = base_config()
  c.method = 'gan'
  c.ema_decay = 0.999
  c.model = dict(
      kind='dcgan', latent_dim=100, prior='normal', conditional=False, dtype='float32',
      # DCGAN: base width, discriminator normalisation, transposed-conv implementation
      features=64, d_norm='batch', conv_impl='auto', d_conv_impl='auto',
      # Goodfellow et al.'s MLP generator and maxout discriminator
      g_hidden_dims=(1200, 1200), g_output_bias='zeros', d_hidden_dims=(240, 240),
      maxout_pieces=5, d_input_dropout=0.2, d_hidden_dropout=0.5,
      g_init_range=ml_collections.FieldReference(None, field_type=float),
      d_init_range=ml_collections.FieldReference(None, field_type=float),
      spectral_norm=False)
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0, r1_gamma=0.0)
  # What the discriminator sees (genlab/augment.py): 'none', 'diffaugment' (its `policy`) or
  # 'ada' (its `ops`, each with probability p; p adapts to r_t -> target unless adaptive=False).
  # The ops are ADA's 'bgc' set; a config names the subset that is safe for its data.
  c.augment = dict(kind='none', policy=('color', 'translation', 'cutout'),
                   ops=('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac',
                        'brightness', 'contrast', 'lumaflip', 'hue', 'saturation'),
                   p=0.0, adaptive=True, target=0.6, interval=4, kimg=500.0)
  c.g_optimizer = _neutral_optimizer()
  c.d_optimizer = _neutral_optimizer()
  c.eval.batch_size = 100
  c.eval.sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall',
                                'parzen')
  c.viz = dict(num_samples=100, interpolation_rows=8, interpolation_steps=10)
  return c


def gan_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the GAN configs: a few steps of narrow networks."""
  set_schedule(c, 16 * c.loss.n_critic, 20, log_every=5, eval_every=10, checkpoint_every=10)
  c.model.features = 8
  c.model.g_hidden_dims = (32, 32)
  c.model.d_hidden_dims = (16, 16)
  c.model.latent_dim = 8
  c.eval.batch_size = 64
  c.viz.num_samples = 16
  c.viz.interpolation_rows = 2
  c.viz.interpolation_steps = 4
  smoke_sample_metrics(c)


def stylegan2_config() -> ml_collections.ConfigDict:
  """Every key of method 'stylegan2' (genlab/methods/stylegan2.py) at the method's own
  defaults, which are stylegan2-ada-pytorch's config F (train.py, cfg 'stylegan2': 8 mapping
  layers, channel_base 32768, Adam lr 0.002 with betas (0, 0.99), R1 gamma 10 every 16 D steps,
  path length weight 2 every 4 G steps on half the batch, style mixing 0.9, EMA half-life
  10 kimg).
  `model.modconv_impl` is an implementation choice, the same function either way: 'activation'
  (styles on the activations, one shared conv, demodulation on the outputs, as the reference
  trains) runs ~18x faster on XLA's CPU than the grouped conv, which takes a slow path there."""
  c = base_config()
  c.method = 'stylegan2'
  c.model = dict(z_dim=512, w_dim=512, mapping_layers=8, mapping_lr_multiplier=0.01,
                 w_avg_beta=0.995, channel_base=32768, channel_max=512, mbstd_group_size=4,
                 mbstd_num_channels=1, d_architecture='resnet', num_bf16_res=0,
                 conv_clamp=ml_collections.FieldReference(None, field_type=float),
                 modconv_impl='activation')
  c.loss = dict(r1_gamma=10.0, r1_interval=16, pl_weight=2.0, pl_interval=4, pl_batch_shrink=2,
                pl_decay=0.01, style_mixing_prob=0.9)
  c.augment = gan_config().augment
  c.g_optimizer = dict(name='adam', learning_rate=0.002, b1=0.0, b2=0.99, eps=1e-8,
                       schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=0.002, b1=0.0, b2=0.99, eps=1e-8,
                       schedule='constant')
  c.ema_kimg = 10.0
  c.ema_rampup = 0.0   # 0: none; the reference's auto config ramps up at 0.05
  c.batch_split = batch_split_field()
  c.eval.batch_size = 100
  c.eval.sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.sample = dict(truncation_psi=1.0, extrapolate=False)   # extrapolate: allow psi outside [0, 1]
  c.viz = dict(num_samples=100)
  return c


def stylegan2_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the StyleGAN2 configs: narrow networks, and every phase of
  the step inside the few steps (both lazy regularisers and style mixing, even where the
  recipe turns them off, as cfg 'cifar' does), so that the tests exercise them all."""
  set_schedule(c, 8, 6, log_every=2, eval_every=3, checkpoint_every=3)
  c.model.update(z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=16,
                 mbstd_group_size=min(c.model.mbstd_group_size, 4))
  c.loss.update(r1_interval=4, pl_interval=2, pl_weight=c.loss.pl_weight or 2.0,
                style_mixing_prob=c.loss.style_mixing_prob or 0.9)
  c.batch_split = 1  # tiny networks gain nothing from slices, and compile faster whole
  c.eval.batch_size = 64
  c.viz.num_samples = 16
  smoke_sample_metrics(c)


# The loss's gradient as that of independent slices of each device's batch (genlab/
# batch_split.py): 'auto' is the family's measured best on the CPU, whose runtime then runs the
# slices at once (the DDPM U-Net step 295 -> 193 ms in 4 slices), and 1 on GPU and TPU. The
# same function; with dropout, its random stream depends on the number of slices.
def batch_split_field() -> ml_collections.FieldReference:
  return ml_collections.FieldReference('auto', field_type=object)  # 'auto' or an int


def diffusion_config() -> ml_collections.ConfigDict:
  """Every key of method 'diffusion' (genlab/methods/diffusion.py) at the method's own
  defaults, which are Ho et al. 2020's CIFAR-10 DDPM (T = 1000, linear betas 1e-4 .. 0.02,
  eps-prediction, 128 channels, mults 1, 2, 2, 2, two residual blocks per level, attention at
  16x16, dropout 0.1, Adam 2e-4 with 5,000 warm-up steps, EMA 0.9999) sampled by the
  ancestral sampler over all T steps."""
  c = base_config()
  c.method = 'diffusion'
  c.ema_decay = 0.9999
  c.model = dict(channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
                 attention_resolutions=(16,), dropout=0.1, norm_groups=32, conditional=False,
                 downsample='conv', patch_size=1, conv_impl='xla', dtype='float32')
  c.diffusion = dict(timesteps=1000, schedule='linear', beta_start=1e-4, beta_end=0.02,
                     variance='beta', clip_denoised=True, p_uncond=0.1)
  c.sampler = dict(kind='ancestral', steps=1000, eta=0.0, guidance=0.0)
  c.optimizer = _neutral_optimizer(grad_clip_norm=None, warmup_steps=0)
  c.batch_split = batch_split_field()
  c.eval.batch_size = 100
  c.eval.bound_timesteps = 10          # stratified draws of t per image (module docstring)
  c.eval.test_bound_timesteps = 100
  c.viz = dict(num_samples=100, strip_rows=8, strip_frames=10)
  return c


def diffusion_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the diffusion configs: a narrow two-level U-Net, 20 noise
  levels, a few steps (and a warm-up of at most 2 of them)."""
  set_schedule(c, 16, 20, log_every=5, eval_every=10, checkpoint_every=10)
  c.model.update(channels=8, channel_mults=(1, 2), num_res_blocks=1, norm_groups=4)
  c.optimizer.warmup_steps = min(c.optimizer.warmup_steps, 2)
  c.diffusion.timesteps = 20
  c.sampler.steps = min(c.sampler.steps, 5)
  c.batch_split = 1  # a tiny U-Net gains nothing from slices, and compiles faster whole
  c.eval.batch_size = 64
  c.eval.bound_timesteps = 2
  c.eval.test_bound_timesteps = 4
  c.viz.update(num_samples=16, strip_rows=2, strip_frames=4)
  smoke_sample_metrics(c)


def autoencoder_config() -> ml_collections.ConfigDict:
  """Every key of method 'autoencoder' (genlab/methods/autoencoder.py) at the method's own
  defaults: both network kinds' keys, no noise, no sparsity (e.g. --config.noise.kind=masking
  works on any autoencoder config)."""
  c = base_config()
  c.method = 'autoencoder'
  c.model = dict(kind='mlp', latent_dim=32, hidden_dims=(512, 256), conv_features=(32, 64),
                 activation='relu', code_activation='linear', dtype='float32')
  c.loss = dict(reconstruction='cross_entropy', sparsity='none', sparsity_weight=0.0,
                sparsity_target=0.05, weight_decay=0.0)
  c.noise = dict(kind='none', level=0.0)
  c.optimizer = _neutral_optimizer(grad_clip_norm=None)
  c.eval.batch_size = 100
  c.eval.knn_k = 5                     # k of the nearest-neighbour classifier on the codes
  c.eval.silent_threshold = 0.01       # a unit whose mean test activation is below is silent
  c.eval.denoisers = ('gaussian_filter', 'median_filter', 'tv_chambolle', 'nl_means')
  return c


def autoencoder_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the autoencoder configs."""
  set_schedule(c, 16, 20, log_every=5, eval_every=10, checkpoint_every=10)
  c.model.hidden_dims = tuple(min(h, 32) for h in c.model.hidden_dims)
  c.model.conv_features = (4, 8)
  c.eval.batch_size = 64


def lm_config() -> ml_collections.ConfigDict:
  """Every key of method 'lm' (genlab/methods/lm.py) and of the text data layer
  (genlab/data/text.py): characters, windows of 128 with the state carried, the LSTM's sizes
  at the method's defaults."""
  c = base_config()
  c.method = 'lm'
  c.dataset = 'shakespeare'            # or tiny_shakespeare, or text:PATH (a file or folder)
  c.data.tokenizer = 'char'            # 'char' | 'word'
  c.data.vocab_size = 0                # 0 = every character (word level: the top V - 1 words)
  c.data.lowercase = False
  c.data.seq_len = 128                 # T, the window of (truncated) backpropagation
  c.data.tbptt = True                  # carry the LSTM state from window to window
  c.data.split_by = 'auto'             # text:PATH only: 'file' | 'fraction' | 'auto'
  c.data.held_out_fraction = 0.1       # text:PATH only: for validation and for test each
  # time_loop: 'scan' (lax.scan, `unroll` steps per iteration), 'hoisted' (the same with the
  # input projections of every step as one matmul before it) or 'unrolled' (a Python loop over
  # time; slower to compile and to run). On this CPU 'scan' is the fastest: the default char
  # model's step took 483 ms, 569 ms hoisted (benchmarks/README.md).
  c.model = dict(embed_dim=128, hidden_dim=256, num_layers=2, dropout=0.0, tie_weights=False,
                 unroll=1, time_loop='scan')
  c.optimizer = _neutral_optimizer(grad_clip_norm=None)
  c.eval.batch_size = 64
  c.eval.seq_len = 512                 # scored tokens per evaluation window
  c.eval.context = 64                  # tokens read, not scored, before each window
  c.sample = dict(prompt='\n', temperatures=(0.2, 0.5, 1.0, 1.2), length=400, top_k=0,
                  top_p=1.0, suppress_unk=True)  # suppress_unk: never generate <unk>
  c.baseline = dict(orders=(1, 2, 3, 4, 5, 6))  # n-gram baselines at the end; () = none
  return c


def lm_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the language-model configs."""
  set_schedule(c, 8, 20, log_every=5, eval_every=10, checkpoint_every=10)
  c.data.seq_len = 16
  c.model.embed_dim = 16
  c.model.hidden_dim = 32
  c.model.num_layers = 1
  c.eval.batch_size = 64
  c.sample.length = 40
  c.baseline.orders = (1, 2, 3)


def domain_config(dataset: str = 'mnist5k') -> ml_collections.ConfigDict:
  """Every key of one domain of config.data.domains (genlab/data, 'domains' mode): the data set,
  its splits (None = the top-level config.data.*_split), size and channels (None = as stored)."""
  none_int = lambda: ml_collections.FieldReference(None, field_type=int)  # noqa: E731
  none_str = lambda: ml_collections.FieldReference(None, field_type=str)  # noqa: E731
  return ml_collections.ConfigDict(dict(
      dataset=dataset, data_dir=none_str(), train_split=none_str(), eval_split=none_str(),
      test_split=none_str(), center_crop=none_int(), image_size=none_int(),
      channels=none_int()))


def cyclegan_config() -> ml_collections.ConfigDict:
  """Every key of method 'cyclegan' (genlab/methods/cyclegan.py) at the method's own defaults,
  which are the official code's: ResNet generator of 9 blocks, 70x70 PatchGAN, cycle weights
  10, identity 0.5, pool of 50, no semantic loss. `model.conv_transpose_impl` is an
  implementation choice: 'auto' is sub-pixel convolutions ('fast', the same function) on the
  CPU and the backend's own transposed convolutions ('xla') on GPU and TPU."""
  c = base_config()
  c.method = 'cyclegan'
  c.dataset = 'domains'
  c.data.domains = ml_collections.ConfigDict(dict(a=domain_config(), b=domain_config()))
  c.model = dict(g_features=64, g_blocks=9, g_downsampling=2, d_features=64, d_layers=3,
                 conv_transpose_impl='auto', dtype='float32')
  c.loss = dict(cycle_weight_a=10.0, cycle_weight_b=10.0, identity_weight=0.5, pool_size=50,
                semantic_weight=0.0, cycle_noise=0.0,
                semantic_classifier=ml_collections.FieldReference(None, field_type=str))
  c.augment = dict(load_size=0, flip=False)  # 0: no resize-and-random-crop jitter
  c.g_optimizer = _neutral_optimizer()
  c.d_optimizer = _neutral_optimizer()
  c.batch_split = batch_split_field()
  # The classifier of each domain's images (configs/classifier_mnist.py:<arg>; '' its default,
  # None none): content preservation and FID of translations into that domain.
  c.eval.domain_classifiers = ml_collections.ConfigDict(dict(
      a=ml_collections.FieldReference(None, field_type=str),
      b=ml_collections.FieldReference(None, field_type=str)))
  c.sample = dict(direction='a_to_b')  # --mode=sample; run.py --direction overrides it
  c.viz = dict(num_images=8)
  return c


def cyclegan_smoke(c: ml_collections.ConfigDict) -> None:
  """The tiny variant shared by the CycleGAN configs."""
  set_schedule(c, 8, 6, log_every=2, eval_every=3, checkpoint_every=3)
  c.model.update(g_features=4, g_blocks=1, d_features=4, d_layers=1)
  c.batch_split = 1  # tiny networks gain nothing from slices, and compile faster whole
  for section in ('g_optimizer', 'd_optimizer'):
    if 'decay_steps' in c[section]:
      c[section].decay_steps = 3
  c.loss.pool_size = 3
  c.eval.batch_size = 64
  c.viz.num_images = 4
