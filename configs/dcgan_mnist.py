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
  c = config_defaults.base_config()
  c.method = 'gan'
  c.dataset = 'mnist5k'
  c.batch_size = 64
  c.num_train_steps = 5_000
  c.log_every_steps = 100
  c.eval_every_steps = 1_000
  c.checkpoint_every_steps = 1_000
  c.ema_decay = 0.999

  c.model = dict(kind='dcgan', latent_dim=100, prior='normal', features=64, conditional=False,
                 g_hidden_dims=(1200, 1200), d_hidden_dims=(240, 240),
                 d_norm='batch', spectral_norm=False, conv_impl='fast', dtype='float32')
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0)
  c.g_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.eval.batch_size = 100
  c.eval.sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall')
  c.eval.test_sample_metrics = ('fid', 'classifier_score', 'coverage', 'precision_recall',
                                'parzen')
  c.viz = dict(num_samples=100, interpolation_rows=8, interpolation_steps=10)

  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c

