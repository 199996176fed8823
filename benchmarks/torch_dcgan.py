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

from absl import app

NZ, NGF, NDF = 100, 64, 64


def _define_flags():
  """The script's flags, defined only when it runs as a script: benchmarks/peers.py imports
  make_step() into one process with other scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      64, 'Global batch size.', steps=50, warmup=5)


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
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  b = _BATCH.value
  timing = torch_timing.time_steps(make_step(torch, b), _WARMUP.value, _STEPS.value)
  torch_timing.report(torch, timing, f'DCGAN batch={b}', _OUTPUT.value, per_step=b,
                      batch_size=b)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
