r"""The StyleGAN2 networks in plain PyTorch, as NVlabs/stylegan2-ada-pytorch computes them.

Why: a yardstick for genlab/models/stylegan2.py. `build(torch)` restates the forward pass of
the reference's training/networks.py (Generator with the 'skip' synthesis network, the
Discriminator with 'resnet', 'orig' or 'skip' blocks; unconditional, float32) with its ops
in plain torch: torch_utils/ops/upfirdn2d.py's _upfirdn2d_ref and setup_filter,
conv2d_resample.py's fast paths (transposed conv for up-sampling), modulated_conv2d (fused and
not), bias_act's reference form, MinibatchStdLayer. Parameter and buffer names are the
reference's, so a reference state_dict loads into it, and `state_dict_from_flax` turns
genlab's flax parameters into one. tests/test_models_stylegan2.py compares genlab's modules
with it (skipped without torch).

  --ref=/path/to/stylegan2-ada-pytorch   checks this restatement against the reference's own
                                         modules (their custom ops fall back to the reference
                                         implementations on the CPU)
  (default)                              times forward+backward of G and D on the CPU

torch is NOT a genlab requirement; install it separately, e.g. the CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_stylegan2.py --resolution=32 --channels=1 --channel_base=4096 \
      --channel_max=128 --batch_size=32
  python benchmarks/torch_stylegan2.py --ref=/work/ref
"""
import sys
import types

import numpy as np
from absl import app, flags


def _define_flags():
  """The script's flags, defined only when it runs as a script: the tests import build()
  into one process with other benchmark scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _RES, _CHANNELS, _BASE, _MAX, _ZDIM, _FUSED, _STEPS, _WARMUP, _THREADS
  global _OUTPUT, _REF, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      32, 'Batch size.', steps=10, warmup=2)
  _RES = flags.DEFINE_integer('resolution', 32, 'Image side (a power of two >= 8).')
  _CHANNELS = flags.DEFINE_integer('channels', 1, 'Image channels.')
  _BASE = flags.DEFINE_integer('channel_base', 4096, 'Channels at resolution r: base // r ...')
  _MAX = flags.DEFINE_integer('channel_max', 128, '... at most this.')
  _ZDIM = flags.DEFINE_integer('z_dim', 128, 'z and w size.')
  _FUSED = flags.DEFINE_boolean('fused_modconv', False, 'Grouped-conv modulation (the '
                                "reference uses it only outside training: its 'grouped').")
  _REF = flags.DEFINE_string('ref', None, 'Check against the reference checkout at this path.')


def build(torch):
  """The restated ops and modules, as a namespace (imported by tests/test_models_stylegan2.py).
  """
  F = torch.nn.functional
  ns = types.SimpleNamespace()

  def setup_filter(f=(1, 3, 3, 1)):
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 1 and f.numel() < 8:
      f = torch.outer(f, f)
    return f / f.sum()

  def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1):
    """_upfirdn2d_ref: zero insertion, pad (negative crops), convolve with f, keep every down-th."""
    if f is None:
      f = torch.ones([1, 1], dtype=torch.float32)
    b, c, h, w = x.shape
    px0, px1, py0, py1 = padding
    x = x.reshape(b, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0):x.shape[2] - max(-py1, 0), max(-px0, 0):x.shape[3] - max(-px1, 0)]
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
      x = F.conv2d(x, f, groups=c)
    else:
      x = F.conv2d(F.conv2d(x, f.unsqueeze(2), groups=c), f.unsqueeze(3), groups=c)
    return x[:, :, ::down, ::down]

  def _pads(f, up=1, down=1, p=0):
    fw = 1 if f is None else f.shape[-1]
    px0 = px1 = p
    if up > 1:
      px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
    if down > 1:
      px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
    return px0, px1

  def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True):
    """conv2d_resample's fast paths for square filters and kernels, symmetric padding."""
    out_c, in_c_per_group, kh, kw = w.shape
    p0, p1 = _pads(f, up, down, padding)
    conv = lambda x, w, **kw_: F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups,
                                        **kw_)
    if kh == 1 and down > 1 and up == 1:
      return conv(upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1)), w)
    if kh == 1 and up > 1 and down == 1:
      return upfirdn2d(conv(x, w), f, up=up, padding=(p0, p1, p0, p1), gain=up ** 2)
    if down > 1 and up == 1:
      return conv(upfirdn2d(x, f, padding=(p0, p1, p0, p1)), w, stride=down)
    if up > 1:
      if groups == 1:
        w = w.transpose(0, 1)
      else:
        w = w.reshape(groups, out_c // groups, in_c_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_c_per_group, out_c // groups, kh, kw)
      p0, p1 = p0 - (kw - 1), p1 - (kw - up)
      pt = max(min(-p0, -p1), 0)
      x = F.conv_transpose2d(x, w if not flip_weight else w.flip([2, 3]), stride=up,
                             padding=[pt, pt], groups=groups)
      return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up ** 2)
    return conv(x, w, padding=p0)

  def bias_act(x, b=None, act='linear', gain=None, clamp=None):
    if b is not None:
      x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == 'lrelu':
      x = F.leaky_relu(x, 0.2)
      gain = np.sqrt(2) if gain is None else gain
    if gain is not None and gain != 1:
      x = x * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x

  def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None,
                       demodulate=True, flip_weight=True, fused_modconv=True):
    b = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(b, 1, -1, 1, 1)
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None
    if not fused_modconv:
      x = x * styles.reshape(b, -1, 1, 1)
      x = conv2d_resample(x, weight, resample_filter, up=up, padding=padding,
                          flip_weight=flip_weight)
      if demodulate:
        x = x * dcoefs.reshape(b, -1, 1, 1)
      return x + noise if noise is not None else x
    if demodulate:
      w = w * dcoefs.reshape(b, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(-1, in_c, kh, kw), resample_filter, up=up,
                        padding=padding, groups=b, flip_weight=flip_weight)
    x = x.reshape(b, -1, *x.shape[2:])
    return x + noise if noise is not None else x

  class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_f, out_f, bias=True, activation='linear', lr_multiplier=1,
                 bias_init=0):
      super().__init__()
      self.activation = activation
      self.weight = torch.nn.Parameter(torch.randn([out_f, in_f]) / lr_multiplier)
      self.bias = torch.nn.Parameter(torch.full([out_f], float(bias_init))) if bias else None
      self.weight_gain, self.bias_gain = lr_multiplier / np.sqrt(in_f), lr_multiplier

    def forward(self, x):
      b = self.bias * self.bias_gain if self.bias is not None else None
      return bias_act(x.matmul((self.weight * self.weight_gain).t()), b, self.activation)

  class Conv2dLayer(torch.nn.Module):
    def __init__(self, in_c, out_c, k, bias=True, activation='lrelu', down=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):
      super().__init__()
      self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
      self.padding = k // 2
      self.filter = setup_filter(resample_filter)
      self.weight_gain = 1 / np.sqrt(in_c * k * k)
      self.weight = torch.nn.Parameter(torch.randn([out_c, in_c, k, k]))
      self.bias = torch.nn.Parameter(torch.zeros([out_c])) if bias else None

    def forward(self, x, gain=1):
      x = conv2d_resample(x, self.weight * self.weight_gain, self.filter, down=self.down,
                          padding=self.padding)
      act_gain = (np.sqrt(2) if self.activation == 'lrelu' else 1) * gain
      clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
      return bias_act(x, self.bias, self.activation, act_gain, clamp)

  class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws, num_layers=8, lr_multiplier=0.01):
      super().__init__()
      self.num_ws, self.num_layers = num_ws, num_layers
      feats = [z_dim] + [w_dim] * num_layers
      for i in range(num_layers):
        setattr(self, f'fc{i}', FullyConnectedLayer(feats[i], feats[i + 1], activation='lrelu',
                                                    lr_multiplier=lr_multiplier))

    def forward(self, z):
      x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
      for i in range(self.num_layers):
        x = getattr(self, f'fc{i}')(x)
      return x.unsqueeze(1).repeat([1, self.num_ws, 1])

  class SynthesisLayer(torch.nn.Module):
    def __init__(self, in_c, out_c, w_dim, resolution, up=1, resample_filter=(1, 3, 3, 1),
                 conv_clamp=None):
      super().__init__()
      self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
      self.filter = setup_filter(resample_filter)
      self.affine = FullyConnectedLayer(w_dim, in_c, bias_init=1)
      self.weight = torch.nn.Parameter(torch.randn([out_c, in_c, 3, 3]))
      self.register_buffer('noise_const', torch.randn([resolution, resolution]))
      self.noise_strength = torch.nn.Parameter(torch.zeros([]))
      self.bias = torch.nn.Parameter(torch.zeros([out_c]))

    def forward(self, x, w, noise_mode='const', fused_modconv=True):
      styles = self.affine(w)
      noise = None
      if noise_mode == 'random':
        noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution]) * self.noise_strength
      if noise_mode == 'const':
        noise = self.noise_const * self.noise_strength
      x = modulated_conv2d(x, self.weight, styles, noise, up=self.up, padding=1,
                           resample_filter=self.filter, flip_weight=(self.up == 1),
                           fused_modconv=fused_modconv)
      return bias_act(x, self.bias, 'lrelu', clamp=self.conv_clamp)

  class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_c, out_c, w_dim, conv_clamp=None):
      super().__init__()
      self.conv_clamp = conv_clamp
      self.affine = FullyConnectedLayer(w_dim, in_c, bias_init=1)
      self.weight = torch.nn.Parameter(torch.randn([out_c, in_c, 1, 1]))
      self.bias = torch.nn.Parameter(torch.zeros([out_c]))
      self.weight_gain = 1 / np.sqrt(in_c)

    def forward(self, x, w, fused_modconv=True):
      styles = self.affine(w) * self.weight_gain
      x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
      return bias_act(x, self.bias, clamp=self.conv_clamp)

  class SynthesisBlock(torch.nn.Module):
    def __init__(self, in_c, out_c, w_dim, resolution, img_channels, resample_filter=(1, 3, 3, 1),
                 conv_clamp=None):
      super().__init__()
      self.in_c, self.num_conv = in_c, (1 if in_c == 0 else 2)
      self.filter = setup_filter(resample_filter)
      if in_c == 0:
        self.const = torch.nn.Parameter(torch.randn([out_c, resolution, resolution]))
      else:
        self.conv0 = SynthesisLayer(in_c, out_c, w_dim, resolution, up=2,
                                    resample_filter=resample_filter, conv_clamp=conv_clamp)
      self.conv1 = SynthesisLayer(out_c, out_c, w_dim, resolution, conv_clamp=conv_clamp)
      self.torgb = ToRGBLayer(out_c, img_channels, w_dim, conv_clamp=conv_clamp)

    def forward(self, x, img, ws, **kw):
      batch, ws = ws.shape[0], iter(ws.unbind(dim=1))
      if self.in_c == 0:
        x = self.conv1(self.const.unsqueeze(0).repeat([batch, 1, 1, 1]), next(ws), **kw)
      else:
        x = self.conv0(x, next(ws), **kw)
        x = self.conv1(x, next(ws), **kw)
      if img is not None:
        fw = self.filter.shape[-1]
        img = upfirdn2d(img, self.filter, up=2, padding=((fw + 1) // 2, (fw - 2) // 2) * 2,
                        gain=4)
      fused = kw.get('fused_modconv', True)
      y = self.torgb(x, next(ws), fused_modconv=fused)
      return x, (img + y if img is not None else y)

  class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):
      super().__init__()
      self.block_resolutions = [2 ** i for i in range(2, int(np.log2(img_resolution)) + 1)]
      ch = lambda r: min(channel_base // r, channel_max)
      self.num_ws = 0
      for res in self.block_resolutions:
        block = SynthesisBlock(ch(res // 2) if res > 4 else 0, ch(res), w_dim, res, img_channels,
                               resample_filter, conv_clamp)
        self.num_ws += block.num_conv
        setattr(self, f'b{res}', block)
      self.num_ws += 1

    def forward(self, ws, **kw):
      x = img = None
      w_idx = 0
      for res in self.block_resolutions:
        block = getattr(self, f'b{res}')
        x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + 1), **kw)
        w_idx += block.num_conv
      return img

  class Generator(torch.nn.Module):
    def __init__(self, z_dim, w_dim, img_resolution, img_channels, mapping_layers=8,
                 mapping_lr_multiplier=0.01, **synthesis_kwargs):
      super().__init__()
      self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **synthesis_kwargs)
      self.num_ws = self.synthesis.num_ws
      self.mapping = MappingNetwork(z_dim, w_dim, self.num_ws, mapping_layers,
                                    mapping_lr_multiplier)

    def forward(self, z, **kw):
      return self.synthesis(self.mapping(z), **kw)

  class DiscriminatorBlock(torch.nn.Module):
    def __init__(self, in_c, tmp_c, out_c, img_channels, architecture='resnet',
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):
      super().__init__()
      self.in_c, self.architecture = in_c, architecture
      self.filter = setup_filter(resample_filter)
      if in_c == 0 or architecture == 'skip':
        self.fromrgb = Conv2dLayer(img_channels, tmp_c, 1, conv_clamp=conv_clamp)
      self.conv0 = Conv2dLayer(tmp_c, tmp_c, 3, conv_clamp=conv_clamp)
      self.conv1 = Conv2dLayer(tmp_c, out_c, 3, down=2, resample_filter=resample_filter,
                               conv_clamp=conv_clamp)
      if architecture == 'resnet':
        self.skip = Conv2dLayer(tmp_c, out_c, 1, bias=False, activation='linear', down=2,
                                resample_filter=resample_filter)

    def forward(self, x, img):
      if self.in_c == 0 or self.architecture == 'skip':
        y = self.fromrgb(img)
        x = x + y if x is not None else y
        fw = self.filter.shape[-1]
        img = (upfirdn2d(img, self.filter, down=2, padding=((fw - 1) // 2, (fw - 2) // 2) * 2)
               if self.architecture == 'skip' else None)
      if self.architecture == 'resnet':
        y = self.skip(x, gain=np.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=np.sqrt(0.5))
        return y + x, img
      return self.conv1(self.conv0(x)), img

  class MinibatchStdLayer(torch.nn.Module):
    def __init__(self, group_size, num_channels=1):
      super().__init__()
      self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
      n, c, h, w = x.shape
      g = min(self.group_size, n) if self.group_size is not None else n
      f = self.num_channels
      y = x.reshape(g, -1, f, c // f, h, w)
      y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt()
      y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
      return torch.cat([x, y], dim=1)

  class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self, in_c, img_channels, architecture='resnet', mbstd_group_size=4,
                 mbstd_num_channels=1, conv_clamp=None):
      super().__init__()
      self.architecture = architecture
      if architecture == 'skip':
        self.fromrgb = Conv2dLayer(img_channels, in_c, 1)
      self.mbstd = (MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
                    if mbstd_num_channels > 0 else None)
      self.conv = Conv2dLayer(in_c + mbstd_num_channels, in_c, 3, conv_clamp=conv_clamp)
      self.fc = FullyConnectedLayer(in_c * 16, in_c, activation='lrelu')
      self.out = FullyConnectedLayer(in_c, 1)

    def forward(self, x, img):
      if self.architecture == 'skip':
        x = x + self.fromrgb(img)
      if self.mbstd is not None:
        x = self.mbstd(x)
      return self.out(self.fc(self.conv(x).flatten(1)))

  class Discriminator(torch.nn.Module):
    def __init__(self, img_resolution, img_channels, architecture='resnet', channel_base=32768,
                 channel_max=512, resample_filter=(1, 3, 3, 1), conv_clamp=None,
                 mbstd_group_size=4, mbstd_num_channels=1):
      super().__init__()
      self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
      ch = lambda r: min(channel_base // r, channel_max)
      for res in self.block_resolutions:
        setattr(self, f'b{res}', DiscriminatorBlock(
            ch(res) if res < img_resolution else 0, ch(res), ch(res // 2), img_channels,
            architecture, resample_filter, conv_clamp))
      self.b4 = DiscriminatorEpilogue(ch(4), img_channels, architecture, mbstd_group_size,
                                      mbstd_num_channels, conv_clamp)

    def forward(self, img):
      x = None
      for res in self.block_resolutions:
        x, img = getattr(self, f'b{res}')(x, img)
      return self.b4(x, img)

  ns.__dict__.update({k: v for k, v in locals().items() if not k.startswith('_')})
  return ns


def state_dict_from_flax(torch, params, noise_const=None):
  """genlab's flax parameters -> a reference-named state_dict.

  Every stored parameter is the reference's under a transpose (genlab/models/stylegan2.py):
  dense (in, out) -> (out, in), conv (kh, kw, in, out) -> (out, in, kh, kw), const (H, W, C)
  -> (C, H, W). `noise_const` {'b8.conv0': (1, H, W, 1) ...} fills the noise_const buffers
  (genlab's const_noise maps).
  """
  from flax.traverse_util import flatten_dict  # pylint: disable=g-import-not-at-top
  out = {}
  for path, value in flatten_dict(params).items():
    value = np.asarray(value, np.float32)
    name = '.'.join(path[:-1] + ('weight' if path[-1] == 'kernel' else path[-1],))
    if value.ndim == 2:
      value = value.T
    elif value.ndim == 3:
      value = value.transpose(2, 0, 1)
    elif value.ndim == 4:
      value = value.transpose(3, 2, 0, 1)
    out[name] = torch.tensor(np.ascontiguousarray(value))
  prefix = 'synthesis.' if 'synthesis' in params else ''   # a Generator's or its synthesis'
  for name, value in (noise_const or {}).items():
    out[f'{prefix}{name}.noise_const'] = torch.tensor(np.asarray(value, np.float32)[0, :, :, 0])
  return out


def check_against_reference(torch, path):
  """Loads the reference's random networks into this restatement: same outputs."""
  sys.path.insert(0, path)
  from training import networks  # pylint: disable=g-import-not-at-top,import-error
  ns = build(torch)
  torch.manual_seed(0)
  worst = 0.0
  for res, img_channels, base, cmax, clamp in ((8, 1, 64, 8, None), (32, 3, 256, 16, 0.7),
                                               (16, 3, 128, 16, None)):
    ref_g = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=res,
                               img_channels=img_channels, mapping_kwargs=dict(num_layers=3),
                               synthesis_kwargs=dict(channel_base=base, channel_max=cmax,
                                                     conv_clamp=clamp)).eval()
    g = ns.Generator(8, 8, res, img_channels, mapping_layers=3, channel_base=base,
                     channel_max=cmax, conv_clamp=clamp)
    state = ref_g.state_dict()
    with torch.no_grad():  # non-zero noise strengths and biases, so that they count
      for k, v in state.items():
        if k.endswith('noise_strength') or (k.endswith('bias') and 'affine' not in k):
          v.copy_(torch.randn(v.shape) * 0.3)
    missing, unexpected = g.load_state_dict(state, strict=False)
    assert not missing and all(k.endswith(('resample_filter', 'w_avg')) for k in unexpected), (
        missing, unexpected)
    z = torch.randn(4, 8)
    for fused in (True, False):
      with torch.no_grad():
        a = ref_g(z, None, noise_mode='const', fused_modconv=fused)
        b = g(z, noise_mode='const', fused_modconv=fused)
      worst = max(worst, float((a - b).abs().max() / a.abs().max()))
    for arch in ('resnet', 'orig', 'skip'):
      ref_d = networks.Discriminator(c_dim=0, img_resolution=res, img_channels=img_channels,
                                     architecture=arch, channel_base=base, channel_max=cmax,
                                     conv_clamp=clamp)
      d = ns.Discriminator(res, img_channels, arch, base, cmax, conv_clamp=clamp)
      state = ref_d.state_dict()
      with torch.no_grad():
        for k, v in state.items():
          if k.endswith('bias'):
            v.copy_(torch.randn(v.shape) * 0.3)
      missing, unexpected = d.load_state_dict(state, strict=False)
      assert not missing and all(k.endswith('resample_filter') for k in unexpected), (
          missing, unexpected)
      img = torch.randn(4, img_channels, res, res)
      with torch.no_grad():
        a, b = ref_d(img, None), d(img)
      worst = max(worst, float((a - b).abs().max() / a.abs().max()))
  print(f'restatement vs reference: max relative difference {worst:.2e}')
  assert worst < 1e-5, worst
  return worst


def make_step(torch, g, d, batch_size, z_dim, fused_modconv=False):
  """step(): forward and backward of D(G(z)).sum() for a fixed z, random noise inputs, the
  gradients left in the parameters (no loss, no optimizer). Also what benchmarks/peers.py
  times beside the same with genlab's networks."""
  z = torch.randn(batch_size, z_dim)
  params = list(g.parameters()) + list(d.parameters())

  def step():
    for p in params:
      p.grad = None
    d(g(z, noise_mode='random', fused_modconv=fused_modconv)).sum().backward()

  return step


def main(_):
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  if _REF.value:
    check_against_reference(torch, _REF.value)
    return
  ns = build(torch)
  g = ns.Generator(_ZDIM.value, _ZDIM.value, _RES.value, _CHANNELS.value,
                   channel_base=_BASE.value, channel_max=_MAX.value)
  d = ns.Discriminator(_RES.value, _CHANNELS.value, channel_base=_BASE.value,
                       channel_max=_MAX.value)
  step = make_step(torch, g, d, _BATCH.value, _ZDIM.value, _FUSED.value)
  timing = torch_timing.time_steps(step, _WARMUP.value, _STEPS.value)
  torch_timing.report(torch, timing, f'StyleGAN2 G+D forward+backward batch={_BATCH.value}',
                      _OUTPUT.value, per_step=_BATCH.value, batch_size=_BATCH.value,
                      fused_modconv=_FUSED.value)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
