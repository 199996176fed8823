"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks", Sec. 4.2), as stylegan2-ada-pytorch computes it
(metrics/perceptual_path_length.py, PPLSampler and compute_ppl).

For a pair of latents z0, z1 ~ N(0, I) and t, the distance between the images at t and at
t + epsilon along the interpolation path, divided by epsilon^2:

  in Z (Eq. 2)  l_Z = E[ d(G(slerp(z0, z1; t)), G(slerp(z0, z1; t + eps))) / eps^2 ]
  in W (Eq. 3)  l_W = E[ d(g(lerp(f(z0), f(z1); t)), g(lerp(f(z0), f(z1); t + eps))) / eps^2 ]

with f the mapping network, g the synthesis network, d LPIPS on VGG16 (Zhang et al. 2018,
genlab/metrics/lpips.py) and slerp as the reference's (both ends normalised to the unit
sphere). sampling='full' draws t ~ U[0, 1); 'end' takes t = 0, as the reference does for its
"end" metrics (Karras et al. 2019, Sec. 4.2: path lengths at the endpoints of the path). W is
StyleGAN2's metric (Karras et al. 2020, "Analyzing and Improving the Image Quality of
StyleGAN", Sec. 3 and Table 1: the reference's ppl2_wend, W, 'end', no crop). The
expectation is the mean over `num_samples` pairs after the reference's outlier rejection:
the values between the 1st percentile (numpy 'lower') and the 99th ('higher'), inclusive.

As the reference: the ws are not truncated; both images of a pair share one noise draw
(the reference re-draws its const noise buffers per batch; here per pair, so the result
does not depend on the batch size); the synthesis runs in float32 (model.num_bf16_res is
ignored, as the reference's force_fp32); `crop` takes the reference's face crop (rows
3/8..7/8, columns 2/8..6/8 of the side; off by default: it is for aligned faces, FFHQ), and
images larger than 256 px are box-filtered down by the integer factor side // 256.

Where genlab differs: the images are what the data holds, the generator's output through
Networks.to_data (so mnist5k's 28x28 centre of the 32x32 output, clipped to [0, 1]; the
reference feeds the unclipped full-resolution output). Small images are not upsampled: the
reference feeds CIFAR-10's 32x32 to VGG16 as it is (resize_images=False), and so does this,
at any side from 16 px (VGG16's fifth block needs 16: 28 px gives 28, 14, 7, 3 and 1 px
features); gray images are repeated to RGB, as the reference does. LPIPS here is the
official v0.1 VGG16 with torchvision's weights, where the reference loads NVIDIA's
TorchScript port of it (vgg16.pt); the numbers are comparable in kind, not to the digit.

  mean, distances = perceptual_path_length(networks, state.ema_params, key, 50_000)
  python -m genlab.metrics.ppl --config configs/stylegan2_mnist.py --workdir runs/stylegan2_mnist
"""
from __future__ import annotations

import os
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from genlab.errors import UserError
from genlab.metrics import lpips as lpips_lib

SPACES = ('w', 'z')
SAMPLINGS = ('end', 'full')
LPIPS_MAX_SIDE = 256   # the reference box-filters larger images down to this
LPIPS_MIN_SIDE = 16    # VGG16's four 2x2 pools leave relu5_3 at least 1 px
PPL_TAG = 0x50504C     # 'PPL': the CLI's key is fold_in(key(config.seed), PPL_TAG)


def slerp(a, b, t):
  """Spherical interpolation of a, b (..., D) at t (..., 1), both first normalised to unit
  length, as the reference's slerp (Shoemake 1985, "Animating Rotation with Quaternion
  Curves": a cos(t theta) + c sin(t theta), c the unit vector of b orthogonal to a)."""
  a = a / jnp.linalg.norm(a, axis=-1, keepdims=True)
  b = b / jnp.linalg.norm(b, axis=-1, keepdims=True)
  d = jnp.sum(a * b, axis=-1, keepdims=True)
  p = t * jnp.arccos(d)
  c = b - d * a
  c = c / jnp.linalg.norm(c, axis=-1, keepdims=True)
  out = a * jnp.cos(p) + c * jnp.sin(p)
  return out / jnp.linalg.norm(out, axis=-1, keepdims=True)


def mean_without_outliers(distances) -> float:
  """The reference's estimate of the expectation in Eq. 2-3: the mean of the values between
  the 1st percentile (numpy's 'lower') and the 99th ('higher'), both kept."""
  d = np.asarray(distances, np.float64)
  lo = np.percentile(d, 1, method='lower')
  hi = np.percentile(d, 99, method='higher')
  return float(d[(d >= lo) & (d <= hi)].mean())


def _check(networks, num_samples, epsilon, space, sampling, crop, batch_size):
  if not isinstance(num_samples, (int, np.integer)) or num_samples < 2:
    raise UserError(f'num_samples={num_samples!r}: path length needs at least 2 pairs (the '
                    'reference uses 50,000); give a larger number.')
  if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float, np.floating)) \
      or not 0 < epsilon < 1:
    raise UserError(f'epsilon={epsilon!r}: give a step in (0, 1) along the path (the '
                    'reference uses 1e-4).')
  if space not in SPACES:
    raise UserError(f'space={space!r} is not known: use one of {list(SPACES)} (w: lerp of '
                    'mapped latents, Eq. 3; z: slerp of latents, Eq. 2).')
  if sampling not in SAMPLINGS:
    raise UserError(f'sampling={sampling!r} is not known: use one of {list(SAMPLINGS)} (end: '
                    't = 0; full: t ~ U[0, 1)).')
  if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
    raise UserError(f'batch_size={batch_size!r}: give a positive number of pairs per batch.')
  h, w = networks.image_shape[:2]
  if crop and h != w:
    raise UserError(f'crop=True takes square images (the reference\'s face crop); these are '
                    f'{h}x{w}: turn crop off.')
  side = _lpips_side(h, w, crop)
  if side < LPIPS_MIN_SIDE:
    raise UserError(f'Images of {h}x{w} give {side} px to LPIPS, less than VGG16\'s '
                    f'{LPIPS_MIN_SIDE}: path length needs larger images (or crop off).')


def _lpips_side(h: int, w: int, crop: bool) -> int:
  """The shorter side of what lpips_input makes of an h x w image."""
  factor = max(h // LPIPS_MAX_SIDE, 1)
  return (h // 8 * 4 if crop else min(h, w)) // factor


def lpips_input(img_BxHxWxC, crop: bool = False):
  """What LPIPS sees of data images: the reference's face crop (rows 3c..7c, columns 2c..6c,
  c = H // 8), then a box filter by factor H // 256 when that is above 1 (H the full side)."""
  side = img_BxHxWxC.shape[1]
  if crop:
    c = side // 8
    img_BxHxWxC = img_BxHxWxC[:, c * 3:c * 7, c * 2:c * 6]
  factor = side // LPIPS_MAX_SIDE
  if factor > 1:
    b, h, w, ch = img_BxHxWxC.shape
    h, w = h // factor, w // factor
    img_BxHxWxC = img_BxHxWxC[:, :h * factor, :w * factor]
    img_BxHxWxC = img_BxHxWxC.reshape(b, h, factor, w, factor, ch).mean(axis=(2, 4))
  return img_BxHxWxC


def _draw(networks, key, index, sampling: str):
  """The draws of pair `index`, a function of (key, index) only: z0, z1 ~ N(0, I) (z_dim,),
  t (U[0, 1) for 'full', 0 for 'end'), and one N(0, 1) noise map (H, W, 1) per synthesis
  layer. fold_in(key, index) splits into the z, t and noise keys; noise layer j (in
  Generator.noise_shapes() order) draws from fold_in(noise key, j)."""
  pair_key = jax.random.fold_in(key, index)
  z_key, t_key, noise_key = jax.random.split(pair_key, 3)
  z = jax.random.normal(z_key, (2, networks.z_dim), jnp.float32)
  t = jax.random.uniform(t_key, (), jnp.float32) if sampling == 'full' else jnp.float32(0.0)
  noise = {name: jax.random.normal(jax.random.fold_in(noise_key, j), (h, w, 1), jnp.float32)
           for j, (name, (h, w)) in enumerate(networks.generator.noise_shapes().items())}
  return z[0], z[1], t, noise


def pair_images(networks, g_params, z0_BxZ, z1_BxZ, t_B, noise, epsilon, space: str):
  """Data images (B, H, W, C) in [0, 1] at t and at t + epsilon of each pair (Eq. 2 in Z,
  Eq. 3 in W); `noise` {layer: (B, H, W, 1)} is shared by both images of a pair."""
  n = z0_BxZ.shape[0]
  if space == 'w':
    ws = networks.map(g_params, jnp.concatenate([z0_BxZ, z1_BxZ]))
    w0, w1 = ws[:n], ws[n:]
    t = t_B[:, None, None]
    wt = jnp.concatenate([w0 + (w1 - w0) * t, w0 + (w1 - w0) * (t + epsilon)])  # torch lerp
  else:
    t = t_B[:, None]
    wt = networks.map(g_params, jnp.concatenate([slerp(z0_BxZ, z1_BxZ, t),
                                                 slerp(z0_BxZ, z1_BxZ, t + epsilon)]))
  both = {name: jnp.concatenate([v, v]) for name, v in noise.items()}
  img = networks.synthesize(g_params, wt, noise_mode='const', noise=both)
  img = networks.to_data(img)
  return img[:n], img[n:]


def _float32(networks):
  """The networks with every synthesis block in float32 (the reference's force_fp32)."""
  if getattr(networks.generator, 'num_bf16_res', 0):
    return networks.replace(generator=networks.generator.clone(num_bf16_res=0))
  return networks


def perceptual_path_length(networks, g_params, key, num_samples: int, epsilon: float = 1e-4,
                           space: str = 'w', sampling: str = 'end', crop: bool = False,
                           batch_size: int = 64, lpips_params: Optional[dict] = None,
                           net: str = 'vgg16',
                           distance: Optional[Callable] = None) -> tuple[float, np.ndarray]:
  """(PPL, per-pair distances (num_samples,)) of a generator (Eq. 2 or 3; module docstring).

  networks: genlab.methods.stylegan2.networks(config, image_shape); g_params: a state's
  ema_params (what the reference measures) or g_params. The pairs' draws depend only on
  `key` and their index (see _draw), so any batch_size gives the same numbers. lpips_params
  (None: the pretrained LPIPS(net) weights) are those of genlab.metrics.lpips.LPIPS(net).
  `distance`, in place of LPIPS: a function (x, y) -> (B,) of image batches in [0, 1],
  traced inside jit (e.g. a pixel-space path length).
  """
  _check(networks, num_samples, epsilon, space, sampling, crop, batch_size)
  networks = _float32(networks)
  if distance is None:
    params = lpips_params if lpips_params is not None else lpips_lib.evaluator(net).params
    module = lpips_lib.LPIPS(net)

    def measure(p, x, y):
      if x.shape[-1] == 1:
        x, y = jnp.repeat(x, 3, axis=-1), jnp.repeat(y, 3, axis=-1)
      return module.apply({'params': p}, 2.0 * x - 1.0, 2.0 * y - 1.0)
  else:
    params = None
    measure = lambda p, x, y: distance(x, y)  # noqa: E731

  @jax.jit
  def batch_distances(g_params, params, key, eps, index_B):
    z0, z1, t, noise = jax.vmap(lambda i: _draw(networks, key, i, sampling))(index_B)
    x, y = pair_images(networks, g_params, z0, z1, t, noise, eps, space)
    return measure(params, lpips_input(x, crop), lpips_input(y, crop)) / jnp.square(eps)

  batch_size = min(int(batch_size), int(num_samples))
  parts = []
  for start in range(0, num_samples, batch_size):
    # The last batch is filled with the following indices (one compiled shape), then cut.
    index = jnp.arange(start, start + batch_size, dtype=jnp.uint32)
    parts.append(np.asarray(batch_distances(g_params, params, key, jnp.float32(epsilon),
                                             index)))
  distances = np.concatenate(parts)[:num_samples]
  return mean_without_outliers(distances), distances


# -- python -m genlab.metrics.ppl ------------------------------------------------------------
def evaluate(config, workdir: str, num_samples: int = 50_000, epsilon: float = 1e-4,
             space: str = 'w', sampling: str = 'end', crop: bool = False,
             batch_size: int = 64) -> dict:
  """PPL of the latest checkpoint's EMA generator in `workdir`; merged into WORKDIR/ppl.json
  under its name (ppl_<space><sampling>[_crop]: ppl_wend is the reference's ppl2_wend)."""
  # Imported here: the metric itself needs neither the trainer nor the method.
  # pylint: disable=g-import-not-at-top
  from genlab import files, parallel, train, workdir as workdir_lib
  from genlab.methods import stylegan2
  # pylint: enable=g-import-not-at-top
  if config.method != 'stylegan2':
    raise UserError(f'Perceptual path length is measured for StyleGAN2 generators (method '
                    f'stylegan2); this config trains {config.method!r}.')
  workdir_lib.check_writable(workdir)
  run, state, _ = train.restore(config, workdir)
  networks = stylegan2.networks(config, run.data_info.image_shape)
  _check(networks, num_samples, epsilon, space, sampling, crop, batch_size)
  key = jax.random.fold_in(jax.random.key(config.seed), PPL_TAG)
  value, distances = perceptual_path_length(
      networks, state.ema_params, key, num_samples, epsilon=epsilon, space=space,
      sampling=sampling, crop=crop, batch_size=batch_size)
  name = f'ppl_{space}{sampling}{"_crop" if crop else ""}'
  record = {'ppl': value, 'step': int(parallel.to_host(state.step)), 'num_samples': num_samples,
            'epsilon': epsilon, 'space': space, 'sampling': sampling, 'crop': crop,
            'net': 'vgg16', 'seed': int(config.seed),
            'image_shape': list(networks.image_shape),
            'distances_mean': float(np.mean(distances)),
            'distances_median': float(np.median(distances))}
  if jax.process_index() == 0:
    path = os.path.join(workdir, 'ppl.json')
    records = files.read_json(path)
    records = records if isinstance(records, dict) else {}
    records[name] = record
    files.write_json(path, records)
  return {name: record}


def _main():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  from genlab import cli  # pylint: disable=g-import-not-at-top  (defines --config)
  workdir = flags.DEFINE_string('workdir', None, 'Run directory of a StyleGAN2 run (default '
                                'runs/<config name>).')
  num_samples = flags.DEFINE_integer('num_samples', 50_000, 'Pairs of latents (the '
                                     'reference: 50,000).')
  epsilon = flags.DEFINE_float('epsilon', 1e-4, 'Step along the path.')
  space = flags.DEFINE_enum('space', 'w', list(SPACES), 'Interpolate in W (Eq. 3) or Z (Eq. 2).')
  sampling = flags.DEFINE_enum('sampling', 'end', list(SAMPLINGS), 't = 0 (end) or t ~ U[0, 1) '
                               '(full).')
  crop = flags.DEFINE_bool('crop', False, 'The reference\'s face crop (aligned faces only).')
  batch_size = flags.DEFINE_integer('batch_size', 64, 'Pairs per compiled batch.')

  def main(_argv):
    config = cli.load_config()
    folder = workdir.value or cli.default_workdir(
        config_flags.get_config_filename(flags.FLAGS['config']))
    out = evaluate(config, folder, num_samples.value, epsilon.value, space.value,
                   sampling.value, crop.value, batch_size.value)
    for name, record in out.items():
      print(f'{name} = {record["ppl"]:.6g} (step {record["step"]}, {record["num_samples"]} '
            f'pairs, epsilon {record["epsilon"]:g})')
    print(f'wrote {os.path.join(folder, "ppl.json")}')

  cli.run_main(main)


if __name__ == '__main__':
  _main()
