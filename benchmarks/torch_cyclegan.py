r"""PyTorch CPU reference: ms per CycleGAN training step (G update + D update).

Why: a yardstick for genlab's JAX CycleGAN networks (genlab/models/cyclegan.py) on the same
CPU. Plain eager PyTorch, NCHW, float32, torch.set_num_threads(<cores>), no compilation.

The networks are those of the official code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py) with its CycleGAN defaults (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks", Appendix 7.2): InstanceNorm2d
(affine=False, track_running_stats=False), conv biases on, no dropout, N(0, 0.02) weights:
  G (ResnetGenerator, ngf=--features, --num_blocks, 2 downsamplings):
    ReflectionPad(3), Conv7 -> ngf, IN, ReLU; 2 x [Conv3 s2 p1, IN, ReLU] (x2 features);
    num_blocks x ResnetBlock [ReflectionPad(1), Conv3, IN, ReLU, ReflectionPad(1), Conv3, IN]
    + skip; 2 x [ConvTranspose3 s2 p1 output_padding 1, IN, ReLU] (/2 features);
    ReflectionPad(3), Conv7 -> C, Tanh.
  D (NLayerDiscriminator, ndf=--d_features, --d_layers): Conv4 s2 p1, LReLU(0.2);
    n = 1..d_layers-1: Conv4 s2 p1 -> ndf*min(2^n, 8), IN, LReLU; Conv4 s1 p1 ->
    ndf*min(2^d_layers, 8), IN, LReLU; Conv4 s1 p1 -> 1 (no sigmoid: LSGAN).
One step, as CycleGANModel.optimize_parameters does it (no image pool: its cost is nil):
  G update (D frozen): fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B =
    G_A(fake_A), idt_A = G_A(B), idt_B = G_B(A);
    loss = MSE(D_A(fake_B), 1) + MSE(D_B(fake_A), 1) + 10 (|rec_A - A| + |rec_B - B|)
           + 0.5 * 10 (|idt_A - B| + |idt_B - A|)      (lambda_A = lambda_B = 10,
    lambda_identity = 0.5); Adam step on G_A and G_B together.
  D update: for each D, 0.5 (MSE(D(real), 1) + MSE(D(fake.detach()), 0)); Adam step on both.
Adam(lr=2e-4, betas=(0.5, 0.999)). Data are random tensors of the right shape: the step's
cost does not depend on the pixel values.

torch is NOT a genlab requirement; install it separately, e.g. the CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_cyclegan.py --features=32 --num_blocks=6 --d_layers=2 \
      --batch_size=16 --image_size=28 --channels=1 --output=/tmp/torch_cyclegan.json
"""

from absl import app, flags


def _define_flags():
  """The script's flags, defined only when it runs as a script: benchmarks/peers.py imports
  make_step() into one process with other scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _SIZE, _CHANNELS, _FEATURES, _BLOCKS, _D_FEATURES, _D_LAYERS, _STEPS
  global _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      16, 'Batch size (per domain).', steps=20, warmup=3)
  _SIZE = flags.DEFINE_integer('image_size', 28, 'Image height and width (a multiple of 4).')
  _CHANNELS = flags.DEFINE_integer('channels', 1, 'Image channels of both domains.')
  _FEATURES = flags.DEFINE_integer('features', 64, 'Generator width ngf.')
  _BLOCKS = flags.DEFINE_integer('num_blocks', 6, 'Generator residual blocks.')
  _D_FEATURES = flags.DEFINE_integer('d_features', 64, 'Discriminator width ndf.')
  _D_LAYERS = flags.DEFINE_integer('d_layers', 3,
                                   'Discriminator n_layers (3: 70x70 PatchGAN).')


def build(torch):
  """(ResnetGenerator, NLayerDiscriminator) classes, as the official networks.py builds them.

  Also imported by tests/test_models_cyclegan.py to check genlab's modules against them.
  """
  nn = torch.nn
  norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)

  class ResnetBlock(nn.Module):

    def __init__(self, dim):
      super().__init__()
      self.conv_block = nn.Sequential(
          nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim), nn.ReLU(True),
          nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), norm(dim))

    def forward(self, x):
      return x + self.conv_block(x)

  class ResnetGenerator(nn.Module):

    def __init__(self, input_nc, output_nc, ngf=64, n_blocks=9, n_downsampling=2):
      super().__init__()
      model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=True),
               norm(ngf), nn.ReLU(True)]
      for i in range(n_downsampling):
        mult = 2 ** i
        model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                  norm(ngf * mult * 2), nn.ReLU(True)]
      mult = 2 ** n_downsampling
      model += [ResnetBlock(ngf * mult) for _ in range(n_blocks)]
      for i in range(n_downsampling):
        mult = 2 ** (n_downsampling - i)
        model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                     output_padding=1, bias=True),
                  norm(ngf * mult // 2), nn.ReLU(True)]
      model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
      self.model = nn.Sequential(*model)

    def forward(self, x):
      return self.model(x)

  class NLayerDiscriminator(nn.Module):

    def __init__(self, input_nc, ndf=64, n_layers=3):
      super().__init__()
      seq = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
      mult = 1
      for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True),
                norm(ndf * mult), nn.LeakyReLU(0.2, True)]
      prev, mult = mult, min(2 ** n_layers, 8)
      seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True),
              norm(ndf * mult), nn.LeakyReLU(0.2, True),
              nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
      self.model = nn.Sequential(*seq)

    def forward(self, x):
      return self.model(x)

  return ResnetGenerator, NLayerDiscriminator


def init_weights(torch, net, gain=0.02):
  """init_weights(init_type='normal', init_gain=0.02): N(0, gain) weights, zero biases."""
  for m in net.modules():
    if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
      torch.nn.init.normal_(m.weight, 0.0, gain)
      if m.bias is not None:
        torch.nn.init.constant_(m.bias, 0.0)


def make_step(torch, batch_size, image_size, channels, features, num_blocks, d_features,
              d_layers):
  """step() -> (G loss, D loss): one G and D update of new networks on a fixed batch of each
  domain, waited for. Also what benchmarks/peers.py times beside genlab's step."""
  b, s, c = batch_size, image_size, channels
  generator, discriminator = build(torch)
  g_a, g_b = (generator(c, c, features, num_blocks) for _ in range(2))
  d_a, d_b = (discriminator(c, d_features, d_layers) for _ in range(2))
  for net in (g_a, g_b, d_a, d_b):
    init_weights(torch, net)
    net.train()
  g_params = list(g_a.parameters()) + list(g_b.parameters())
  d_params = list(d_a.parameters()) + list(d_b.parameters())
  opt_g = torch.optim.Adam(g_params, lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
  mse, l1 = torch.nn.MSELoss(), torch.nn.L1Loss()
  real_a = torch.rand(b, c, s, s) * 2 - 1
  real_b = torch.rand(b, c, s, s) * 2 - 1
  lambda_a = lambda_b = 10.0
  lambda_idt = 0.5

  def gan_loss(pred, target_is_real):
    return mse(pred, torch.full_like(pred, 1.0 if target_is_real else 0.0))

  def step():
    # Forward of both generators (CycleGANModel.forward).
    fake_b = g_a(real_a)
    rec_a = g_b(fake_b)
    fake_a = g_b(real_b)
    rec_b = g_a(fake_a)
    # G update with the discriminators frozen (set_requires_grad(False)).
    for p in d_params:
      p.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    idt_a, idt_b = g_a(real_b), g_b(real_a)
    loss_g = (gan_loss(d_a(fake_b), True) + gan_loss(d_b(fake_a), True)
              + lambda_a * l1(rec_a, real_a) + lambda_b * l1(rec_b, real_b)
              + lambda_b * lambda_idt * l1(idt_a, real_b)
              + lambda_a * lambda_idt * l1(idt_b, real_a))
    loss_g.backward()
    opt_g.step()
    # D update (backward_D_basic for each D).
    for p in d_params:
      p.requires_grad_(True)
    opt_d.zero_grad(set_to_none=True)
    loss_d = 0.0
    for net, real, fake in ((d_a, real_b, fake_b), (d_b, real_a, fake_a)):
      loss = 0.5 * (gan_loss(net(real), True) + gan_loss(net(fake.detach()), False))
      loss.backward()
      loss_d += loss.item()
    opt_d.step()
    return loss_g.item(), loss_d

  return step


def main(argv):
  del argv
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  b, s, c = _BATCH.value, _SIZE.value, _CHANNELS.value
  step = make_step(torch, b, s, c, _FEATURES.value, _BLOCKS.value, _D_FEATURES.value,
                   _D_LAYERS.value)
  timing = torch_timing.time_steps(step, _WARMUP.value, _STEPS.value)
  torch_timing.report(
      torch, timing, f'batch={b} {s}x{s}x{c} G({_FEATURES.value},{_BLOCKS.value}) '
      f'D({_D_FEATURES.value},{_D_LAYERS.value})', _OUTPUT.value, per_step=b, batch_size=b,
      image_shape=[s, s, c], features=_FEATURES.value, num_blocks=_BLOCKS.value,
      d_features=_D_FEATURES.value, d_layers=_D_LAYERS.value)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
