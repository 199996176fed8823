r"""PyTorch CPU reference: ms per evaluation of genlab's style-transfer loss and its gradient.

Why: a yardstick for genlab/methods/style_transfer.py (configs/style_transfer.py) on the same
CPU. Its L-BFGS spends nearly all of an iteration in evaluations of the total loss and its
gradient with respect to the pixels (one or more per iteration, as the line search asks), so
one evaluation is the unit both sides time. Plain eager PyTorch, NCHW, float32,
torch.set_num_threads(<cores>), no compilation.

The network is genlab's VGG16 trunk (genlab/pretrained/vgg.py, class VGG(depth=16,
pooling='avg'), torchvision's ImageNet weights, which `load_flax` copies from genlab's
params): [0, 1] RGB standardised with ImageNet's per-channel mean and std, then per block
3x3 convs (padding 1, bias) each followed by a ReLU, widths (64, 64), (128, 128),
(256, 256, 256), (512, 512, 512), (512, 512, 512), and between blocks a 2x2 stride-2 average
pool (Gatys et al. 2016, Sec. 2: average instead of max pooling; flax's VALID pooling floors
odd sizes, as avg_pool2d does). Activations are named as genlab's: conv{b}_{i}, relu{b}_{i},
pool{b}; the trunk stops after the deepest layer asked for (here relu5_1), as genlab's does.

The loss is Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks"
(CVPR 2016), as genlab states it, with F^l the generated image's features at layer l (N_l
channels), P the content photo's at relu4_2 and A^l the style photo's Gram at l:
  L_content = 1/2 sum (F^relu4_2 - P)^2                                  (Eq. 1)
  G^l = F^l F^l^T / M_l, M_l = H_l W_l (each Gram divided by its own M)   (Eq. 3)
  E_l = 1 / (4 N_l^2) sum (G^l - A^l)^2                                  (Eq. 4, as genlab)
  L_style = sum_s v_s sum_l w_l E_l, w_l = 0.2 at relu1_1..relu5_1       (Eq. 5)
  L = alpha L_content + beta L_style + tv_weight TV(x), alpha 1, beta 1e8, tv_weight 0  (Eq. 7)
TV is computed and multiplied by 0, as genlab's objective does. P and A are computed once,
before the timed steps (genlab's `make` does the same); the network's weights take no
gradient. One step: the loss at the image, `.backward()` to the image's gradient, `.item()`.

Images: make_step takes the content and style photos as (H, W, 3) arrays in [0, 1];
benchmarks/peers.py gives it genlab's own (config.content='skimage:chelsea' and
config.style='skimage:immunohistochemistry' loaded at image_size 256: content 170x256, style
256x256; tests/test_torch_peers.py checks these shapes), and the image evaluated is the
content (config.init='content'), as on genlab's side. This script alone (`main`) uses random
images of exactly those shapes and torch's default initialisation of the weights: the cost of
an evaluation depends on the shapes, not on the pixel or weight values.

torch is NOT a genlab requirement; install it separately (requirements-bench.txt), e.g. the
CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_style_transfer.py --steps=10 --output=/tmp/torch_style.json
"""
import numpy as np
from absl import app

# configs/style_transfer.py (tests/test_torch_peers.py checks that they agree).
IMAGE_SIZE = 256
CONTENT_SHAPE = (170, 256, 3)   # skimage chelsea (300x451) with its longer side at IMAGE_SIZE
STYLE_SHAPE = (256, 256, 3)     # skimage immunohistochemistry (512x512), style_scale 1
POOLING = 'avg'
CONTENT_LAYER = 'relu4_2'
STYLE_LAYERS = ('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1')
STYLE_LAYER_WEIGHTS = (0.2, 0.2, 0.2, 0.2, 0.2)
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 1e8, 0.0

# genlab/pretrained/vgg.py: VGG16's conv widths per block, torchvision's input standardisation.
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _define_flags():
  """The script's flags, defined only when it runs as a script: the tests import build()
  into one process with other benchmark scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      1, 'Images optimised at once (the method optimises one).', steps=10, warmup=2)


def build(torch, pooling=POOLING):
  """VGG16's trunk: forward(x (N, 3, H, W) in [0, 1], layers) -> {name: activation}.

  Its convs are `net.convs[name]` (conv1_1 .. conv5_3), the names of genlab's params, which
  `load_flax` relies on. Also imported by tests/test_torch_peers.py.
  """
  nn, F = torch.nn, torch.nn.functional
  if pooling not in ('max', 'avg'):
    raise ValueError(f'pooling={pooling!r}: use max or avg.')
  pool = F.avg_pool2d if pooling == 'avg' else F.max_pool2d

  class VGG16(nn.Module):

    def __init__(self):
      super().__init__()
      self.convs = nn.ModuleDict()
      c_in = 3
      for b, widths in enumerate(VGG16_BLOCKS, 1):
        for i, width in enumerate(widths, 1):
          self.convs[f'conv{b}_{i}'] = nn.Conv2d(c_in, width, 3, padding=1)
          c_in = width
      self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
      self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x, layers):
      left, out = set(layers), {}

      def keep(name, value):
        if name in left:
          out[name] = value
          left.discard(name)

      x = (x - self.mean) / self.std
      for b, widths in enumerate(VGG16_BLOCKS, 1):
        for i in range(1, len(widths) + 1):
          x = self.convs[f'conv{b}_{i}'](x)
          keep(f'conv{b}_{i}', x)
          x = F.relu(x)
          keep(f'relu{b}_{i}', x)
          if not left:  # nothing deeper was asked for
            return {name: out[name] for name in layers}
        x = pool(x, 2, 2)
        keep(f'pool{b}', x)
        if not left:
          break
      if left:
        raise ValueError(f'VGG16 has no layer {sorted(left)[0]!r}.')
      return {name: out[name] for name in layers}

  return VGG16()


def load_flax(torch, net, params):
  """Copies genlab's VGG16 params ({'conv1_1': {'kernel' (3, 3, in, out) HWIO, 'bias'}, ...},
  e.g. genlab.pretrained.vgg.load_vgg16()) into `net` (OIHW)."""
  with torch.no_grad():
    for name, conv in net.convs.items():
      p = params[name]
      conv.weight.copy_(torch.tensor(np.asarray(p['kernel'], np.float32).transpose(3, 2, 0, 1)))
      conv.bias.copy_(torch.tensor(np.asarray(p['bias'], np.float32)))
  assert set(params) == set(net.convs), (sorted(params), sorted(net.convs))


def gram(f):
  """G / M for each image: (N, C, C), the Gram matrix of Eq. 3 over its M = H W positions."""
  n, c, h, w = f.shape
  f = f.reshape(n, c, h * w)
  return f @ f.transpose(1, 2) / (h * w)


def total_variation(x):
  """sum of squared differences between neighbouring pixels (genlab's _image_optim's)."""
  dy = x[:, :, 1:] - x[:, :, :-1]
  dx = x[:, :, :, 1:] - x[:, :, :, :-1]
  return (dy ** 2).sum() + (dx ** 2).sum()


def nchw(torch, image_HxWxC):
  """An (H, W, C) array as a (1, C, H, W) float32 tensor."""
  x = np.asarray(image_HxWxC, np.float32).transpose(2, 0, 1)[None]
  return torch.tensor(np.ascontiguousarray(x))


def targets(torch, net, content, styles):
  """(P, [{layer: A^l} per style]): the content photo's relu4_2 and each style photo's Grams,
  from (1, 3, H, W) tensors, without gradients."""
  with torch.no_grad():
    p = net(content, (CONTENT_LAYER,))[CONTENT_LAYER]
    grams = [{l: gram(v) for l, v in net(s, STYLE_LAYERS).items()} for s in styles]
  return p, grams


def loss_terms(torch, net, x, p, style_grams, style_weights):
  """(L, L_content, L_style, TV) of the image x (1, 3, H, W), in genlab's order of terms."""
  f = net(x, tuple(dict.fromkeys(STYLE_LAYERS + (CONTENT_LAYER,))))
  content = 0.5 * ((f[CONTENT_LAYER] - p) ** 2).sum()
  style = torch.zeros(())
  for v, grams in zip(style_weights, style_grams):
    for w, l in zip(STYLE_LAYER_WEIGHTS, STYLE_LAYERS):
      n_l = f[l].shape[1]
      style = style + float(v) * w * ((gram(f[l]) - grams[l]) ** 2).sum() / (4.0 * n_l ** 2)
  tv = total_variation(x)
  return CONTENT_WEIGHT * content + STYLE_WEIGHT * style + TV_WEIGHT * tv, content, style, tv


def make_step(torch, net, content=None, styles=None, style_weights=None):
  """step() -> loss: one evaluation of the total loss at the content image and its gradient
  with respect to the pixels (`.backward()`), waited for. Also what benchmarks/peers.py
  times. `content` (H, W, 3) and `styles` [(h, w, 3)] in [0, 1]; None: random images of
  CONTENT_SHAPE / STYLE_SHAPE. `style_weights`: the blend v_s (default equal, summing to 1)."""
  rng = np.random.default_rng(0)
  if content is None:
    content = rng.uniform(size=CONTENT_SHAPE)
  if styles is None:
    styles = [rng.uniform(size=STYLE_SHAPE)]
  if style_weights is None:
    style_weights = [1.0 / len(styles)] * len(styles)
  net.requires_grad_(False)  # gradients for the image only, as genlab's objective
  content_t = nchw(torch, content)
  p, grams = targets(torch, net, content_t, [nchw(torch, s) for s in styles])
  x = content_t.clone().requires_grad_(True)  # config.init='content'

  def step():
    x.grad = None
    loss = loss_terms(torch, net, x, p, grams, style_weights)[0]
    loss.backward()
    return loss.item()

  return step


def main(argv):
  del argv
  if _BATCH.value != 1:
    raise app.UsageError(f'--batch_size={_BATCH.value}: the method optimises one image; give 1.')
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  step = make_step(torch, build(torch))
  timing = torch_timing.time_steps(step, _WARMUP.value, _STEPS.value)
  torch_timing.report(
      torch, timing, f'style transfer loss + gradient at {CONTENT_SHAPE[0]}x{CONTENT_SHAPE[1]}',
      _OUTPUT.value, config='configs/style_transfer.py', content_shape=list(CONTENT_SHAPE),
      style_shape=list(STYLE_SHAPE), pooling=POOLING, content_layer=CONTENT_LAYER,
      style_layers=list(STYLE_LAYERS))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
