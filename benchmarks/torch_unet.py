r"""PyTorch CPU reference: ms per DDPM training step with genlab's U-Net (configs/ddpm_mnist.py).

Why: a yardstick for genlab's JAX diffusion step (genlab/methods/diffusion.py,
genlab/models/unet.py) on the same CPU (`python -m genlab.bench --config
configs/ddpm_mnist.py`). Plain eager PyTorch, NCHW, float32, torch.set_num_threads(<cores>),
no compilation.

The network is genlab's UNet at the config's size (Ho et al. 2020, Appendix B, narrowed for
28x28 digits): 2x2 patches as channels (pixel_unshuffle: 28x28x1 -> 14x14x4), channels 32,
channel_mults (1, 2), one residual block per level, attention at 7x7 and in the middle, group
norm with 8 groups (eps 1e-6, flax's), SiLU, dropout 0, stride-2 3x3 conv downsampling with
flax's 'SAME' padding (14 -> 7 pads one row and column after, none before: an explicit F.pad,
which Conv2d's symmetric padding cannot express), nearest 2x upsampling + 3x3 conv:
  t -> sinusoidal embedding (32) -> Linear(32,128) -> SiLU -> Linear(128,128) = emb
  stem Conv3(4->32) [14x14]
  down: ResBlock(32->32) | Conv3 s2 (32) [7x7] | ResBlock(32->64) + Attention(64)
  middle: ResBlock(64), Attention(64), ResBlock(64)
  up: 2 x [concat skip, ResBlock(->64) + Attention(64)] | nearest 2x, Conv3(64) [14x14]
      2 x [concat skip, ResBlock(->32)]
  out: GroupNorm, SiLU, Conv3(32->4) -> pixel_shuffle -> 28x28x1 (predicted noise)
  ResBlock(x, emb): h = Conv3(SiLU(GN(x))) + Linear(SiLU(emb)); h = Conv3(SiLU(GN(h)));
    x -> Conv1x1(x) where the width changes (genlab's Dense over channels); out = x + h.
  Attention(x): single head over the H*W positions, q, k, v = Conv1x1(GN(x)) (one 3C-wide
    projection), softmax(q k^T / sqrt(C)) v (F.scaled_dot_product_attention), x + Conv1x1.
  The last conv of each residual branch, of each attention and of the output start at zero.
One step (Ho et al. 2020, Algorithm 1, the simple loss of Eq. 14): x0 = 2 x - 1, t ~ U{0..999},
eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (linear betas 1e-4 .. 0.02),
loss = mean((eps_theta(x_t, t) - eps)^2); gradients clipped to global norm 1;
Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8) with the config's schedule (200 linear warm-up
steps, then a cosine decay over the remaining 3,800); then the EMA of the weights,
decay min(0.999, (1 + t) / (10 + t)). Batch 64 of 28x28x1. Data are a fixed batch of random
pixels in [0, 1]: the step's cost does not depend on them. genlab's step also returns its
metrics (grad norm, EMA decay); here only the loss is read back (`.item()`, which waits).

torch is NOT a genlab requirement; install it separately (requirements-bench.txt), e.g. the
CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_unet.py --batch_size=64 --steps=20 --output=/tmp/torch_unet.json
"""
import math

import numpy as np
from absl import app

# configs/ddpm_mnist.py (tests/test_torch_peers.py checks that they agree).
IMAGE_SHAPE = (28, 28, 1)
MODEL = dict(channels=32, channel_mults=(1, 2), num_res_blocks=1, attention_resolutions=(7,),
             norm_groups=8, patch_size=2, dropout=0.0)
TIMESTEPS, BETA_START, BETA_END = 1000, 1e-4, 0.02
LEARNING_RATE, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
GRAD_CLIP_NORM = 1.0
NUM_TRAIN_STEPS, WARMUP_STEPS = 4_000, 200
EMA_DECAY = 0.999


def _define_flags():
  """The script's flags, defined only when it runs as a script: the tests import build()
  into one process with other benchmark scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      64, 'Batch size (the config\'s is 64).', steps=20, warmup=3)


def build(torch, image_shape=IMAGE_SHAPE, channels=32, channel_mults=(1, 2), num_res_blocks=1,
          attention_resolutions=(7,), norm_groups=8, patch_size=2, dropout=0.0):
  """The U-Net: forward(x (B,C,H,W), t (B,)) -> predicted noise (B,C,H,W).

  Its modules are registered in the order genlab's flax modules are created, which
  `load_flax` relies on. Also imported by tests/test_torch_peers.py.
  """
  nn, F = torch.nn, torch.nn.functional
  height, width, image_channels = image_shape
  p = patch_size
  norm = lambda c: nn.GroupNorm(math.gcd(norm_groups, c), c, eps=1e-6)
  emb_dim = 4 * channels

  def zero(module):
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module

  class ResBlock(nn.Module):

    def __init__(self, c_in, c_out):
      super().__init__()
      self.norm1 = norm(c_in)
      self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
      self.emb = nn.Linear(emb_dim, c_out)
      self.norm2 = norm(c_out)
      self.dropout = nn.Dropout(dropout)
      self.conv2 = zero(nn.Conv2d(c_out, c_out, 3, padding=1))
      self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
      h = self.conv1(F.silu(self.norm1(x)))
      h = h + self.emb(F.silu(emb))[:, :, None, None]
      h = self.conv2(self.dropout(F.silu(self.norm2(h))))
      return self.skip(x) + h

  class Attention(nn.Module):

    def __init__(self, c):
      super().__init__()
      self.norm = norm(c)
      self.qkv = nn.Conv2d(c, 3 * c, 1)
      self.proj = zero(nn.Conv2d(c, c, 1))

    def forward(self, x):
      b, c, h, w = x.shape
      q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
      out = F.scaled_dot_product_attention(q, k, v)  # (b, hw, c), scale 1/sqrt(c)
      return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))

  class Downsample(nn.Module):
    """3x3 stride-2 conv with 'SAME' padding: ceil(n / 2) outputs, the excess padding after."""

    def __init__(self, c):
      super().__init__()
      self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x):
      pads = []
      for n in (x.shape[3], x.shape[2]):
        total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
        pads += [total // 2, total - total // 2]
      return self.conv(F.pad(x, pads))

  class Upsample(nn.Module):
    """Nearest 2x, cropped to the skip's size (7 -> 14; 4 -> 8 -> 7), then a 3x3 conv."""

    def __init__(self, c):
      super().__init__()
      self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, size):
      x = F.interpolate(x, scale_factor=2, mode='nearest')[:, :, :size[0], :size[1]]
      return self.conv(x)

  class UNet(nn.Module):

    def __init__(self):
      super().__init__()
      if height % p or width % p:
        raise ValueError(f'{height}x{width} images do not split into {p}x{p} patches.')
      self.time_embed = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim))
      self.stem = nn.Conv2d(p * p * image_channels, channels, 3, padding=1)
      res = height // p  # genlab tests the height (h.shape[1]) against attention_resolutions
      c, skip_channels, sizes = channels, [channels], []
      self.down = nn.ModuleList()
      for level, mult in enumerate(channel_mults):
        for _ in range(num_res_blocks):
          self.down.append(ResBlock(c, channels * mult))
          c = channels * mult
          if res in attention_resolutions:
            self.down.append(Attention(c))
          skip_channels.append(c)
        if level != len(channel_mults) - 1:
          self.down.append(Downsample(c))
          sizes.append(res)
          res = -(-res // 2)
          skip_channels.append(c)
      self.middle = nn.ModuleList([ResBlock(c, c), Attention(c), ResBlock(c, c)])
      self.up = nn.ModuleList()
      for level, mult in reversed(list(enumerate(channel_mults))):
        for _ in range(num_res_blocks + 1):
          self.up.append(ResBlock(c + skip_channels.pop(), channels * mult))
          c = channels * mult
          if res in attention_resolutions:
            self.up.append(Attention(c))
        if level != 0:
          self.up.append(Upsample(c))
          res = sizes.pop()  # the skip's: the crop removes the excess of 2x
      self.out_norm = norm(c)
      self.out_conv = zero(nn.Conv2d(c, p * p * image_channels, 3, padding=1))

    def forward(self, x, t):
      emb = self.time_embed(timestep_embedding(torch, t, channels))
      h = self.stem(F.pixel_unshuffle(x, p))
      skips = [h]
      for m in self.down:
        if isinstance(m, ResBlock):
          h = m(h, emb)
          skips.append(h)
        elif isinstance(m, Attention):
          h = skips[-1] = m(h)  # the skip is the block's output after its attention
        else:
          h = m(h)
          skips.append(h)
      for m in self.middle:
        h = m(h, emb) if isinstance(m, ResBlock) else m(h)
      for m in self.up:
        if isinstance(m, ResBlock):
          h = m(torch.cat([h, skips.pop()], dim=1), emb)
        elif isinstance(m, Attention):
          h = m(h)
        else:
          h = m(h, skips[-1].shape[2:])
      assert not skips
      h = self.out_conv(F.silu(self.out_norm(h)))
      return F.pixel_shuffle(h, p)

  net = UNet()
  # For load_flax.
  net.ResBlock, net.Attention = ResBlock, Attention
  net.patch_size, net.image_channels = p, image_channels
  return net


def timestep_embedding(torch, t, dim, max_period=10_000.0):
  """[sin(t w_i), cos(t w_i)], w_i = max_period^(-i / (dim/2 - 1)) (genlab's, Ho et al.'s)."""
  half = dim // 2
  freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32)
                    / max(half - 1, 1))
  args = t.to(torch.float32)[:, None] * freqs[None]
  emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
  return torch.nn.functional.pad(emb, (0, dim % 2))


def alphas_cumprod(timesteps=TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END):
  """abar_t of the linear schedule, float64 as genlab computes it (methods/diffusion.betas)."""
  scale = 1000.0 / timesteps
  betas = np.linspace(scale * beta_start, min(scale * beta_end, 0.999), timesteps)
  return np.cumprod(1.0 - betas)


def ddpm_loss(torch, net, x, t, eps, abar):
  """Ho et al.'s simple loss at timesteps t with noise eps; x in [0, 1], abar float32 (T,)."""
  a = abar[t].view(-1, 1, 1, 1)
  x_t = a.sqrt() * (2.0 * x - 1.0) + (1.0 - a).sqrt() * eps
  return torch.mean(torch.square(net(x_t, t) - eps))


def lr_factor(step, warmup=WARMUP_STEPS, total=NUM_TRAIN_STEPS):
  """genlab/optim.py's schedule: linear from 0 over `warmup` steps, then optax's cosine decay
  over the remaining total - warmup."""
  if step < warmup:
    return step / warmup
  decay = max(1, total - warmup)
  return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, decay) / decay))


def load_flax(torch, net, params):
  """Copies genlab's UNet parameters (flax: conv kernels HWIO, Dense kernels (in, out)) into
  `net` (OIHW; genlab's per-channel Dense layers become 1x1 convs). flax names each module
  by kind and creation order (Conv_0, ResBlock_3, ...); `net` registers its modules in the
  same order. Patches: genlab stacks a patch's pixels as (row, column, channel), pixel_unshuffle
  as (channel, row, column), so the first and last convs are permuted accordingly."""
  nn = torch.nn
  perm = patch_permutation(net.patch_size, net.image_channels)
  t = lambda a: torch.tensor(np.asarray(a))  # a copy: flax's arrays are read-only

  def conv(module, p, kind='conv', out_perm=None, in_perm=None):
    k = np.asarray(p['kernel'])
    w = k.T[:, :, None, None] if kind == 'dense' else k.transpose(3, 2, 0, 1)
    b = np.asarray(p['bias'])
    if in_perm is not None:
      w = w[:, in_perm]
    if out_perm is not None:
      w, b = w[out_perm], b[out_perm]
    module.weight.copy_(t(w.reshape(module.weight.shape)))
    module.bias.copy_(t(b))

  def group_norm(module, p):
    module.weight.copy_(t(np.asarray(p['scale'])))
    module.bias.copy_(t(np.asarray(p['bias'])))

  def walk(module):
    for child in module.children():
      if isinstance(child, (net.ResBlock, net.Attention, nn.Conv2d, nn.Linear, nn.GroupNorm)):
        yield child
      else:
        yield from walk(child)

  names = {net.ResBlock: 'ResBlock', net.Attention: 'Attention', nn.Conv2d: 'Conv',
           nn.Linear: 'Dense', nn.GroupNorm: 'GroupNorm'}
  counts = {}
  with torch.no_grad():
    for m in walk(net):
      kind = names[type(m)]
      p = params[f'{kind}_{counts.setdefault(kind, 0)}']
      counts[kind] += 1
      if kind == 'ResBlock':
        group_norm(m.norm1, p['GroupNorm_0'])
        conv(m.conv1, p['Conv_0'])
        conv(m.emb, p['Dense_0'], 'dense')
        group_norm(m.norm2, p['GroupNorm_1'])
        conv(m.conv2, p['Conv_1'])
        if isinstance(m.skip, nn.Conv2d):
          conv(m.skip, p['Dense_1'], 'dense')
      elif kind == 'Attention':
        group_norm(m.norm, p['GroupNorm_0'])
        conv(m.qkv, p['Dense_0'], 'dense')
        conv(m.proj, p['Dense_1'], 'dense')
      elif kind == 'GroupNorm':
        group_norm(m, p)
      elif kind == 'Dense':
        conv(m, p, 'dense')
      else:
        conv(m, p, in_perm=perm if m is net.stem else None,
             out_perm=perm if m is net.out_conv else None)
  expected = {k: sum(1 for name in params if name.startswith(k + '_')) for k in counts}
  assert counts == expected, (counts, expected)


def patch_permutation(p, channels):
  """perm[k] = genlab's channel for pixel_unshuffle's channel k = c p^2 + q, where q = row p +
  column within the patch: genlab stacks a patch as q C + c."""
  return np.array([q * channels + c for c in range(channels) for q in range(p * p)])


def make_step(torch, batch_size):
  """(step, parameters): step() -> loss is one training step of a new U-Net, Adam and the
  EMA on a fixed batch, waited for. Also what benchmarks/peers.py times."""
  b = batch_size
  h, w, c = IMAGE_SHAPE
  net = build(torch, IMAGE_SHAPE, **MODEL)
  net.train()
  params = list(net.parameters())
  ema = [q.detach().clone() for q in params]
  opt = torch.optim.Adam(params, lr=LEARNING_RATE, betas=BETAS, eps=EPS)
  sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
  abar = torch.tensor(alphas_cumprod(), dtype=torch.float32)
  x = torch.rand(b, c, h, w)
  updates = [0]

  def step():
    t = torch.randint(0, TIMESTEPS, (b,))
    eps = torch.randn(b, c, h, w)
    opt.zero_grad(set_to_none=True)
    loss = ddpm_loss(torch, net, x, t, eps, abar)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP_NORM)
    opt.step()
    sched.step()
    decay = min(EMA_DECAY, (1.0 + updates[0]) / (10.0 + updates[0]))
    updates[0] += 1
    with torch.no_grad():
      torch._foreach_lerp_(ema, params, 1.0 - decay)  # pylint: disable=protected-access
    return loss.item()

  return step, params


def main(argv):
  del argv
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  b = _BATCH.value
  step, params = make_step(torch, b)
  timing = torch_timing.time_steps(step, _WARMUP.value, _STEPS.value)
  torch_timing.report(
      torch, timing, f'U-Net batch={b}', _OUTPUT.value, per_step=b,
      config='configs/ddpm_mnist.py', batch_size=b, image_shape=list(IMAGE_SHAPE),
      model={k: list(v) if isinstance(v, tuple) else v for k, v in MODEL.items()},
      parameters=sum(q.numel() for q in params))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
