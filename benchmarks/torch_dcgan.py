r"""PyTorch CPU reference: ms per DCGAN-MNIST training step (D update + G update).

Why: a yardstick for genlab's JAX DCGAN on the same CPU (see benchmarks/conv_cpu.py --dcgan).
Plain eager PyTorch, NCHW, float32, torch.set_num_threads(<cores>), no compilation.

DCGAN (Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional
GANs", Sec. 3 guidelines; layer sizes as in the PyTorch DCGAN example, adapted to 28x28x1),
nz=100, ngf=ndf=64:
  G: z (B,100) -> Linear(100, 7*7*128, no bias) -> (B,128,7,7) -> BN -> ReLU
     -> ConvTranspose(128->64, k4 s2 p1, no bias) -> BN -> ReLU
     -> ConvTranspose(64->1, k4 s2 p1) -> tanh                        (7 -> 14 -> 28)
  D: Conv(1->64, k4 s2 p1) -> LeakyReLU(0.2) -> Conv(64->128, k4 s2 p1, no bias) -> BN
     -> LeakyReLU(0.2) -> flatten (128*7*7) -> Linear(->1) logit         (28 -> 14 -> 7)
One step (Goodfellow et al. 2014, Alg. 1 with the non-saturating generator loss of Sec. 3):
  D loss = BCE(D(x), 1) + BCE(D(G(z).detach()), 0); Adam step on D;
  G loss = BCE(D(G(z)), 1) with the same G(z) (graph reused); Adam step on G.
Adam(lr=2e-4, betas=(0.5, 0.999)) for both; BatchNorm in training mode. Data are random
tensors of the right shape: the step's cost does not depend on the pixel values.

torch is NOT a genlab requirement; install it separately, e.g. the CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_dcgan.py --batch_size=64 --steps=50 --output=/tmp/torch64.json
"""
import json
import os
import time

from absl import app, flags

NZ, NGF, NDF = 100, 64, 64


def _define_flags():
  """The script's flags, defined only when it runs as a script: benchmarks/peers.py imports
  make_step() into one process with other scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  _BATCH = flags.DEFINE_integer('batch_size', 64, 'Global batch size.')
  _STEPS = flags.DEFINE_integer('steps', 50, 'Timed steps (after warm-up).')
  _WARMUP = flags.DEFINE_integer('warmup', 5, 'Untimed steps first.')
  _THREADS = flags.DEFINE_integer('threads', None, 'torch threads; default: the core count.')
  _OUTPUT = flags.DEFINE_string('output', None, 'Write the results as JSON here.')
  _PASSIVE = flags.DEFINE_boolean(
      'passive_wait', False, 'Set OMP_WAIT_POLICY=PASSIVE before torch starts: on a CPU shared '
      'with other jobs, OpenMP threads that spin at barriers can make steps ~10x slower.')


def build(torch):
  nn = torch.nn

  class Generator(nn.Module):

    def __init__(self):
      super().__init__()
      self.fc = nn.Linear(NZ, 7 * 7 * 2 * NGF, bias=False)
      self.net = nn.Sequential(
          nn.BatchNorm2d(2 * NGF), nn.ReLU(True),
          nn.ConvTranspose2d(2 * NGF, NGF, 4, 2, 1, bias=False), nn.BatchNorm2d(NGF),
          nn.ReLU(True),
          nn.ConvTranspose2d(NGF, 1, 4, 2, 1, bias=True), nn.Tanh())

    def forward(self, z):
      return self.net(self.fc(z).view(-1, 2 * NGF, 7, 7))

  class Discriminator(nn.Module):

    def __init__(self):
      super().__init__()
      self.net = nn.Sequential(
          nn.Conv2d(1, NDF, 4, 2, 1, bias=True), nn.LeakyReLU(0.2, inplace=True),
          nn.Conv2d(NDF, 2 * NDF, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * NDF),
          nn.LeakyReLU(0.2, inplace=True), nn.Flatten(),
          nn.Linear(2 * NDF * 7 * 7, 1))

    def forward(self, x):
      return self.net(x).view(-1)

  return Generator(), Discriminator()


def make_step(torch, batch_size):
  """step() -> (D loss, G loss): one D and G update of new networks on a fixed batch, waited
  for. Also what benchmarks/peers.py times beside genlab's step."""
  b = batch_size
  net_g, net_d = build(torch)
  net_g.train()
  net_d.train()
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = torch.nn.BCEWithLogitsLoss()
  x = torch.rand(b, 1, 28, 28) * 2 - 1
  z = torch.randn(b, NZ)
  ones, zeros = torch.ones(b), torch.zeros(b)

  def step():
    # D update.
    net_d.zero_grad(set_to_none=True)
    fake = net_g(z)
    err_d = bce(net_d(x), ones) + bce(net_d(fake.detach()), zeros)
    err_d.backward()
    opt_d.step()
    # G update (non-saturating loss), through the D just updated, reusing fake's graph.
    net_g.zero_grad(set_to_none=True)
    err_g = bce(net_d(fake), ones)
    err_g.backward()
    opt_g.step()
    return err_d.item(), err_g.item()

  return step


def main(argv):
  del argv
  if _PASSIVE.value:
    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'  # read when torch loads its OpenMP runtime
  try:
    import torch
  except ImportError:
    raise SystemExit('torch is not installed (it is not a genlab requirement): '
                     'pip install torch --index-url https://download.pytorch.org/whl/cpu')
  threads = _THREADS.value or os.cpu_count()
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  b = _BATCH.value
  step = make_step(torch, b)
  for _ in range(_WARMUP.value):
    step()
  times = []
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  times.sort()
  median_ms = 1e3 * times[len(times) // 2]
  mean_ms = 1e3 * sum(times) / len(times)
  result = dict(framework='torch', torch_version=torch.__version__, threads=threads,
                omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'default'),
                batch_size=b, steps=_STEPS.value, step_ms_median=round(median_ms, 3),
                step_ms_mean=round(mean_ms, 3), step_ms_min=round(1e3 * times[0], 3),
                examples_per_s=round(1e3 * b / median_ms, 1))
  print(f'torch {torch.__version__} threads={threads} batch={b}: {median_ms:.2f} ms/step '
        f'(median of {_STEPS.value}; mean {mean_ms:.2f}, min {1e3 * times[0]:.2f}), '
        f'{result["examples_per_s"]:.1f} examples/s')
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
