r"""PyTorch CPU reference: ms per VAE training step (configs/vae_mnist.py).

Why: a yardstick for genlab's JAX VAE step (genlab/methods/vae.py, genlab/models/vae.py) on
the same CPU (`python -m genlab.bench --config configs/vae_mnist.py`). Plain eager PyTorch,
float32, torch.set_num_threads(<cores>), no compilation.

The network of Burda et al. 2016 ("Importance Weighted Autoencoders", Sec. 5, one stochastic
layer), as genlab's make_vae(kind='mlp') builds it:
  q(z|x):  x (B,1,28,28) -> flatten 784 -> Linear(784,200) -> tanh -> Linear(200,200) -> tanh
           -> mean = Linear(200,50), log-variance = Linear(200,50)
  p(x|z):  z (B,50) -> Linear(50,200) -> tanh -> Linear(200,200) -> tanh -> Linear(200,784)
           -> Bernoulli logits (B,1,28,28)
One step (k=1, genlab's `objective` with num_importance_samples=1): eps ~ N(0, I),
z = mean + exp(logvar / 2) eps (Kingma & Welling 2014, Eq. 4);
loss = mean over the batch of [-log p(x|z) + KL(q(z|x) || N(0, I))], the Bernoulli NLL summed
over pixels (BCE with logits) and the analytic KL (Eq. 10); Adam(lr=1e-3, betas=(0.9, 0.999),
eps=1e-4) with the config's cosine decay over its 20,000 steps, no gradient clipping.
Data are a fixed batch of random 0/1 pixels (dynamically binarised digits): the step's cost does
not depend on their values. genlab's step also returns its metrics (grad norm, KL, ...); here
only the loss is read back (`.item()`, which waits for the step).

torch is NOT a genlab requirement; install it separately (requirements-bench.txt), e.g. the
CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_vae.py --batch_size=100 --steps=200 --output=/tmp/torch_vae.json
"""
import math

import numpy as np
from absl import app

# configs/vae_mnist.py (tests/test_torch_peers.py checks that they agree).
IMAGE_SHAPE = (28, 28, 1)
LATENT_DIM = 50
HIDDEN_DIMS = (200, 200)
LEARNING_RATE, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-4
NUM_TRAIN_STEPS = 20_000  # the length of the cosine decay


def _define_flags():
  """The script's flags, defined only when it runs as a script: the tests import build()
  into one process with other benchmark scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      100, 'Batch size (the config\'s is 100).', steps=200, warmup=10)


def build(torch, image_shape=IMAGE_SHAPE, latent_dim=LATENT_DIM, hidden_dims=HIDDEN_DIMS):
  """The VAE module: forward(x (B,C,H,W), eps (B,Z)) -> (logits (B,C,H,W), mean, logvar).

  Also imported by tests/test_torch_peers.py to check it against genlab's modules.
  """
  nn = torch.nn
  h, w, c = image_shape
  pixels = h * w * c

  def mlp(sizes):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
      layers += [nn.Linear(n_in, n_out), nn.Tanh()]
    return nn.Sequential(*layers)

  class VAE(nn.Module):

    def __init__(self):
      super().__init__()
      self.encoder = mlp((pixels, *hidden_dims))
      self.mean = nn.Linear(hidden_dims[-1], latent_dim)
      self.logvar = nn.Linear(hidden_dims[-1], latent_dim)
      self.decoder = nn.Sequential(mlp((latent_dim, *hidden_dims[::-1])),
                                   nn.Linear(hidden_dims[0], pixels))

    def encode(self, x):
      # Flattened in (H, W, C) order, as genlab's NHWC reshape (the same for C = 1).
      hid = self.encoder(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
      return self.mean(hid), self.logvar(hid)

    def decode(self, z):
      return self.decoder(z).view(-1, h, w, c).permute(0, 3, 1, 2)

    def forward(self, x, eps):
      mean, logvar = self.encode(x)
      return self.decode(mean + torch.exp(0.5 * logvar) * eps), mean, logvar

  return VAE()


def neg_elbo(torch, net, x, eps):
  """-ELBO averaged over the batch, with its two parts -> (loss, recon_nll, kl)."""
  logits, mean, logvar = net(x, eps)
  recon_nll = torch.nn.functional.binary_cross_entropy_with_logits(
      logits, x, reduction='none').sum(dim=(1, 2, 3))
  kl = -0.5 * torch.sum(1.0 + logvar - mean.square() - logvar.exp(), dim=1)
  return (recon_nll + kl).mean(), recon_nll.mean(), kl.mean()


def cosine_decay(step, total=NUM_TRAIN_STEPS):
  """optax.cosine_decay_schedule's factor at `step` (genlab/optim.py, schedule='cosine')."""
  return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def load_flax(torch, net, params):
  """Copies genlab's VAE parameters (flax, Dense kernels (in, out)) into `net`."""
  enc, dec = params['encoder'], params['decoder']
  dense = [enc[f'Dense_{i}'] for i in range(len(net.encoder) // 2)]
  dense += [enc['mean'], enc['logvar']]
  n_dec = len(net.decoder[0]) // 2
  dense += [dec[f'Dense_{i}'] for i in range(n_dec + 1)]
  linears = [m for m in net.encoder if isinstance(m, torch.nn.Linear)]
  linears += [net.mean, net.logvar]
  linears += [m for m in net.decoder.modules() if isinstance(m, torch.nn.Linear)]
  assert len(linears) == len(dense)
  with torch.no_grad():
    for m, p in zip(linears, dense):
      m.weight.copy_(torch.tensor(np.asarray(p['kernel']).T))
      m.bias.copy_(torch.tensor(np.asarray(p['bias'])))


def make_step(torch, batch_size):
  """step() -> loss: one training step of a new VAE and Adam on a fixed batch, waited for.

  Also what benchmarks/peers.py times beside genlab's step.
  """
  h, w, c = IMAGE_SHAPE
  net = build(torch)
  net.train()
  opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPS)
  sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_decay)
  x = torch.bernoulli(torch.full((batch_size, c, h, w), 0.5))

  def step():
    opt.zero_grad(set_to_none=True)
    loss, _, _ = neg_elbo(torch, net, x, torch.randn(batch_size, LATENT_DIM))
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()

  return step


def main(argv):
  del argv
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  b = _BATCH.value
  timing = torch_timing.time_steps(make_step(torch, b), _WARMUP.value, _STEPS.value)
  torch_timing.report(torch, timing, f'VAE batch={b}', _OUTPUT.value, per_step=b,
                      config='configs/vae_mnist.py', batch_size=b, latent_dim=LATENT_DIM,
                      hidden_dims=list(HIDDEN_DIMS))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
