"""The official StyleGAN2 code trained on mnist5k at genlab's sizes, to tell a recipe's failure
from a port's: `python experiments/karras2020_stylegan2/reference_train.py --ref DIR`.

DIR is a checkout of NVlabs/stylegan2-ada-pytorch; torch (CPU is enough) is needed, neither is
a genlab requirement. Its networks (training/networks.py) and loss (training/loss.py
StyleGAN2Loss, no augmentation) are driven by the phase loop of training/training_loop.py
(Gmain, Greg every 4, Dmain, Dreg every 16, each with its own z; Adam at lr and betas
corrected by k/(k+1); the G EMA with its ramp-up), on the 4,000 mnist5k training digits padded
with black to 32x32, as configs/stylegan2_mnist.py sees them. Every --every steps it writes
1,000 EMA samples (28x28, const noise) to OUT/samples_<step>.npy and prints D's mean logit on
reals and fakes and the std of the EMA images across z (a collapsed generator has a small one).

Measured with the sizes of configs/stylegan2_mnist.py (--lr 0.0025, --gamma 0.0064), the
official code collapses as genlab does: all samples one shape by step 750 (std across z 1.04
at initialisation, 0.12 at step 750), at --lr 0.001 too.
"""
from __future__ import annotations

import copy
import json
import os
import sys
import time

from absl import app, flags

_REF = flags.DEFINE_string('ref', None, 'A checkout of NVlabs/stylegan2-ada-pytorch.')
_OUT = flags.DEFINE_string('out', 'runs/karras2020_stylegan2/reference', 'Output folder.')
_STEPS = flags.DEFINE_integer('steps', 2000, 'Training steps (batches).')
_EVERY = flags.DEFINE_integer('every', 250, 'Steps between sample dumps.')
_BATCH = flags.DEFINE_integer('batch_size', 32, 'Batch size.')
_LR = flags.DEFINE_float('lr', 0.0025, 'Adam learning rate of both players.')
_GAMMA = flags.DEFINE_float('gamma', 0.0002 * 32 ** 2 / 32, 'R1 gamma.')
_PL = flags.DEFINE_float('pl_weight', 2.0, 'Path-length weight.')
_MIXING = flags.DEFINE_float('style_mixing', 0.9, 'Style-mixing probability.')
_MBSTD = flags.DEFINE_integer('mbstd_group', 4, 'Minibatch-stddev group size.')
_ARCH = flags.DEFINE_enum('d_architecture', 'resnet', ['resnet', 'orig', 'skip'], 'D.')
_CBASE = flags.DEFINE_integer('channel_base', 512, 'channel_base of G and D.')
_CMAX = flags.DEFINE_integer('channel_max', 64, 'channel_max of G and D.')
_ZDIM = flags.DEFINE_integer('z_dim', 64, 'z and w dimensions.')
_THREADS = flags.DEFINE_integer('threads', 1, 'torch threads.')


def _digits():
  """mnist5k's training digits, padded with -1 to (N, 1, 32, 32) in [-1, 1]."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__)))))
  import genlab.data  # pylint: disable=g-import-not-at-top,unused-import  (registers mnist5k)
  ds = tfds.data_source('mnist5k', split='train')
  d = np.stack([ds[i]['image'][..., 0] for i in range(len(ds))]).astype(np.float32)
  x = np.full((len(d), 1, 32, 32), -1.0, np.float32)
  x[:, 0, 2:30, 2:30] = d / 127.5 - 1.0
  return x


def main(_):
  if not _REF.value or not os.path.isdir(os.path.join(_REF.value, 'training')):
    raise app.UsageError('--ref: give a checkout of NVlabs/stylegan2-ada-pytorch.')
  sys.path.insert(0, _REF.value)
  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  from training.loss import StyleGAN2Loss  # pylint: disable=import-error
  from training.networks import Discriminator, Generator  # pylint: disable=import-error
  torch.set_num_threads(_THREADS.value)
  torch.manual_seed(0)
  os.makedirs(_OUT.value, exist_ok=True)
  x = torch.from_numpy(_digits())
  b, zd = _BATCH.value, _ZDIM.value
  common = dict(channel_base=_CBASE.value, channel_max=_CMAX.value, num_fp16_res=0,
                conv_clamp=None)
  g = Generator(z_dim=zd, c_dim=0, w_dim=zd, img_resolution=32, img_channels=1,
                mapping_kwargs=dict(num_layers=2), synthesis_kwargs=common)
  d = Discriminator(c_dim=0, img_resolution=32, img_channels=1, architecture=_ARCH.value,
                    epilogue_kwargs=dict(mbstd_group_size=_MBSTD.value), **common)
  g.train().requires_grad_(False)
  d.train().requires_grad_(False)
  g_ema = copy.deepcopy(g).eval()
  loss = StyleGAN2Loss(device=torch.device('cpu'), G_mapping=g.mapping, G_synthesis=g.synthesis,
                       D=d, augment_pipe=None, style_mixing_prob=_MIXING.value,
                       r1_gamma=_GAMMA.value, pl_batch_shrink=2, pl_decay=0.01,
                       pl_weight=_PL.value)
  phases = []
  for name, module, reg in (('G', g, 4), ('D', d, 16)):
    ratio = reg / (reg + 1)
    opt = torch.optim.Adam(module.parameters(), lr=_LR.value * ratio,
                           betas=[0 ** ratio, 0.99 ** ratio], eps=1e-8)
    phases += [(name + 'main', module, opt, 1), (name + 'reg', module, opt, reg)]
  ema_kimg, no_c, t0, nimg = b * 10 / 32, torch.zeros(b, 0), time.time(), 0
  fixed_z = torch.randn(1000, zd, generator=torch.Generator().manual_seed(1))
  for step in range(_STEPS.value + 1):
    if step % _EVERY.value == 0:
      with torch.no_grad():
        imgs = torch.cat([g_ema(fixed_z[i:i + 100], None, noise_mode='const')
                          for i in range(0, 1000, 100)])
        real = x[torch.randint(0, len(x), (64,))]
        d_real = d(real, None).mean().item()
        d_fake = d(g(torch.randn(64, zd), None), None).mean().item()
      np.save(os.path.join(_OUT.value, f'samples_{step:06d}.npy'),
              ((imgs[:, 0, 2:30, 2:30] + 1) / 2).clamp(0, 1).numpy())
      print(json.dumps(dict(step=step, seconds=round(time.time() - t0), d_real=d_real,
                            d_fake=d_fake, std_across_z=float(imgs.std(0).mean()))), flush=True)
    if step == _STEPS.value:
      break
    real = x[torch.randint(0, len(x), (b,))]
    for (name, module, opt, interval), z in zip(phases, torch.randn(len(phases) * b, zd).split(b)):
      if step % interval:
        continue
      opt.zero_grad(set_to_none=True)
      module.requires_grad_(True)
      loss.accumulate_gradients(phase=name, real_img=real, real_c=no_c, gen_z=z, gen_c=no_c,
                                sync=True, gain=interval)
      module.requires_grad_(False)
      for p in module.parameters():
        if p.grad is not None:
          torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
      opt.step()
    with torch.no_grad():  # training_loop.py's G_ema update, ema_rampup 0.05
      ema_nimg = min(ema_kimg * 1000, nimg * 0.05)
      beta = 0.5 ** (b / max(ema_nimg, 1e-8))
      for p_ema, p in zip(g_ema.parameters(), g.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
      for b_ema, b_ in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b_)
    nimg += b


if __name__ == '__main__':
  app.run(main)
