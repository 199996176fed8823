"""--mode=edit: latent editing of the latest StyleGAN2 checkpoint, as pictures and a record.

Writes into WORKDIR/edit/ (the functions are genlab/methods/stylegan2_edit.py):
  <method>_direction_<k>.png  rows: seeds; columns: the edit strengths along direction k
                              (k < --edit_directions), on the layers --edit_layers
  style_mixing_<part>.png     Karras et al. 2019, Fig. 3: the column sources with the coarse /
                              middle / fine styles of the row sources
  truncation.png              rows: psi (--edit_psis); columns: seeds
  projection.png              rows: target | projection | the projection edited along
                              direction --edit_index at each strength
  projection.npz              the projected ws, noise maps, targets and images
  edit.json                   the directions' eigenvalues or explained variance and sigmas,
                              each layer's sensitivity to w (layer_sensitivity: near 0 at
                              every layer means a collapsed generator), the projection's
                              LPIPS, pixel MSE and PSNR per image
Read-only in the rest of the workdir (no lock), as --mode=sample is, so it may run beside
training. Uses the generator's EMA parameters and the state's w_avg (the truncation centre).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from genlab import data as data_lib
from genlab import files
from genlab import log
from genlab import parallel
from genlab import train
from genlab import viz
from genlab import workdir as workdir_lib
from genlab.errors import UserError
from genlab.methods import stylegan2
from genlab.methods import stylegan2_edit as edit_lib

EDIT_DIR = 'edit'
_SEEDS_TAG, _SAMPLES_TAG, _PROJECT_TAG, _COLUMNS_TAG, _SENSITIVITY_TAG = 1, 2, 3, 4, 5  # a tag a use
_SENSITIVITY_SAMPLES = 64  # latents behind edit.json's layer_sensitivity
_CHUNK = 32  # images per synthesis call: one compiled shape for every picture


@dataclasses.dataclass(frozen=True)
class Options:
  """What --mode=edit makes (run.py's --edit_* and --project* flags)."""
  method: str = 'sefa'
  num_directions: int = 5
  index: int = 0
  layers: Optional[str] = None
  strengths: tuple = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
  num_seeds: int = 4
  psis: tuple = (1.0, 0.7, 0.5, 0.2, 0.0)
  num_w_samples: int = 10_000
  project: Optional[str] = None
  project_count: Optional[int] = None  # test images to project; None: 4, or 0 with project
  project_steps: int = 1000
  project_space: str = 'w'
  project_resize: bool = False

  def check(self) -> None:
    """Everything that needs no checkpoint, as one-line UserErrors."""
    if self.method not in edit_lib.DIRECTION_METHODS:
      raise UserError(f'--edit_method={self.method!r}: use one of '
                      f'{list(edit_lib.DIRECTION_METHODS)}.')
    if self.project_space not in edit_lib.SPACES:
      raise UserError(f'--project_space={self.project_space!r}: use one of '
                      f'{list(edit_lib.SPACES)}.')
    for flag, value, low in (('--edit_directions', self.num_directions, 1),
                             ('--edit_seeds', self.num_seeds, 1),
                             ('--edit_samples', self.num_w_samples, 2),
                             ('--project_count', self.project_count or 0, 0),
                             ('--project_steps', self.project_steps, 1)):
      if value < low:
        raise UserError(f'{flag}={value}: give an integer >= {low}.')
    if self.project is not None and self.project_count is not None:
      raise UserError('--project and --project_count both choose what to project: give one.')
    if self.index < 0:
      raise UserError(f'--edit_index={self.index}: give a direction index >= 0.')
    if not self.strengths or not np.all(np.isfinite(self.strengths)):
      raise UserError(f'--edit_strengths={",".join(map(str, self.strengths))}: give finite '
                      'numbers, e.g. -3,-2,-1,0,1,2,3.')
    if not self.psis:
      raise UserError('--edit_psis is empty: give truncation psis in [0, 1], e.g. 1,0.7,0.5.')
    for psi in self.psis:
      if not 0.0 <= psi <= 1.0:
        raise UserError(f'--edit_psis: truncation psi {psi} is outside [0, 1]: give values from '
                        '0 (the average w) to 1 (no truncation).')


def parse_floats(flag: str, values) -> tuple:
  """A DEFINE_list's strings as floats, or a one-line UserError naming the flag."""
  try:
    return tuple(float(v) for v in values)
  except ValueError:
    raise UserError(f'{flag}={",".join(values)}: give comma-separated numbers.') from None


def read_target(path: str, image_shape, resize: bool) -> np.ndarray:
  """The PNG (or any image PIL reads) at `path` as (1, H, W, C) float32 in [0, 1] at the data's
  shape: grey <-> RGB converted (RGB to grey as PIL's 'L', ITU-R 601-2 luma), resized only when
  `resize` (Lanczos), else a UserError that says what to do."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from genlab.data import folders  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise UserError(f'--project={path}: no such file; give the path of a PNG image.')
  h, w, c = image_shape
  pixels = folders.read_image(path)  # uint8 (H, W, 1 | 3), alpha dropped
  if c not in (1, 3):
    raise UserError(f'--project: the model makes {c}-channel images; projecting a file needs '
                    'a 1- or 3-channel model: use --project_count with its data instead.')
  if pixels.shape[-1] != c:
    mode = 'L' if c == 1 else 'RGB'
    pixels = np.asarray(Image.fromarray(pixels if pixels.shape[-1] == 3 else pixels[..., 0])
                        .convert(mode))
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
  if pixels.shape[:2] != (h, w):
    if not resize:
      raise UserError(f'--project={path} is {pixels.shape[0]}x{pixels.shape[1]}, the model '
                      f'makes {h}x{w} images: pass --project_resize to resize it, or give a '
                      f'{h}x{w} image.')
    image = Image.fromarray(pixels if c == 3 else pixels[..., 0])
    pixels = np.asarray(image.resize((w, h), Image.LANCZOS))
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
  return (pixels.astype(np.float32) / 255.0)[None]


class _Renderer:
  """ws -> images in [0, 1] at the data's shape, 'const' noise (or given maps), in chunks of
  one compiled size."""

  def __init__(self, nets, g_params):
    self.nets, self.g_params = nets, g_params
    self._fn = jax.jit(lambda g, ws, noise: nets.to_data(
        nets.synthesize(g, ws, noise_mode='const', noise=noise)))

  def __call__(self, ws_MxNxW, noise: Optional[dict] = None) -> np.ndarray:
    ws = np.asarray(ws_MxNxW, np.float32)
    out = []
    for start in range(0, len(ws), _CHUNK):
      part = ws[start:start + _CHUNK]
      pad = _CHUNK - len(part)
      chunk_noise = None if noise is None else {
          k: np.pad(np.asarray(v[start:start + _CHUNK]), ((0, pad), (0, 0), (0, 0), (0, 0)))
          for k, v in noise.items()}
      part = np.pad(part, ((0, pad), (0, 0), (0, 0)))
      out.append(np.asarray(self._fn(self.g_params, part, chunk_noise))[:_CHUNK - pad])
    return np.concatenate(out)

  def grid(self, ws_RxCxNxW, noise: Optional[dict] = None) -> np.ndarray:
    """(R, C, H, W, C) images of a grid of ws (`noise`: maps of the R * C rows, row-major)."""
    r, c = ws_RxCxNxW.shape[:2]
    images = self(np.reshape(ws_RxCxNxW, (r * c, *ws_RxCxNxW.shape[2:])), noise)
    return images.reshape(r, c, *images.shape[1:])


def _save(path: str, rows_RxCxHxWxC: np.ndarray) -> None:
  rows = np.asarray(rows_RxCxHxWxC)
  if jax.process_index() == 0:
    viz.save_png(path, viz.interpolation_strip(rows), scale=max(1, 64 // rows.shape[2]))


def _directions(options: Options, g_params, nets, key, layers):
  """(directions (K, w_dim), per-direction record for edit.json, sigmas (K,))."""
  w = edit_lib.sample_w(g_params, nets, jax.random.fold_in(key, _SAMPLES_TAG),
                        options.num_w_samples)
  if options.method == 'sefa':
    vectors, values = edit_lib.sefa_directions(g_params, nets, range(*layers))
    sigmas = edit_lib.direction_sigmas(w, vectors)
    record = {'eigenvalues': values.tolist()}
  else:
    vectors, sigmas, _ = edit_lib.ganspace_directions(
        g_params, nets, jax.random.fold_in(key, _SAMPLES_TAG), options.num_w_samples)
    variance = sigmas ** 2
    record = {'explained_variance': variance.tolist(),
              'explained_variance_ratio': (variance / variance.sum()).tolist()}
  record['sigmas'] = sigmas.tolist()
  return vectors, record, sigmas


def _targets(options: Options, config, nets) -> tuple[Optional[np.ndarray], str]:
  if options.project is not None:
    return read_target(options.project, nets.image_shape, options.project_resize), \
        options.project
  count = 4 if options.project_count is None else options.project_count
  if count == 0:
    return None, ''
  images = data_lib.split_arrays(config, 'test')['image'][:count]
  return images, f'the first {len(images)} images of the test split'


def edit(config, workdir: str, options: Options) -> str:
  """Writes WORKDIR/edit/ (module docstring) for the latest checkpoint; returns its path."""
  if config.get('method') != 'stylegan2':
    raise UserError(f'--mode=edit edits StyleGAN2 latents; {config.get("method")!r} is not '
                    'stylegan2: give a StyleGAN2 config, e.g. configs/stylegan2_mnist.py.')
  options.check()
  workdir_lib.check_writable(workdir)
  run, state, _ = train.restore(config, workdir)
  nets = stylegan2.networks(config, run.data_info.image_shape)
  layers = edit_lib.parse_layers(options.layers, nets.num_ws)
  w_dim = int(state.w_avg.shape[0])
  if options.num_directions > w_dim:
    raise UserError(f'--edit_directions={options.num_directions}: there are {w_dim} directions '
                    f'(w has {w_dim} dimensions); give at most {w_dim}.')
  edit_lib.check_direction(options.index, w_dim, '--edit_index')
  targets, source = _targets(options, config, nets)
  from genlab.metrics import lpips  # pylint: disable=g-import-not-at-top
  lpips_params = lpips.load_params('vgg16') if targets is not None else None

  out_dir = os.path.join(workdir, EDIT_DIR)
  os.makedirs(out_dir, exist_ok=True)
  # Uncommitted arrays on the default device: the restored state is laid out on the training
  # mesh, and arguments of two layouts would compile each function here twice.
  g_params, w_avg = jax.tree.map(jnp.asarray, jax.device_get((state.ema_params, state.w_avg)))
  key = jax.random.fold_in(run.base_key, train.SAMPLE_TAG)
  render = _Renderer(nets, g_params)
  # The latents as --mode=sample draws them: truncated by the config's psi (checked, with
  # sample.extrapolate, when the method was made).
  psi = float(config.get('sample', {}).get('truncation_psi', 1.0))
  z = jax.random.normal(jax.random.fold_in(key, _SEEDS_TAG), (options.num_seeds, nets.z_dim))
  seeds_ws = stylegan2.truncate(nets.map(g_params, z), w_avg, psi)
  vectors, record, sigmas = _directions(options, g_params, nets, key, layers)
  strengths = np.asarray(options.strengths, np.float32)
  written = []

  def save(name, rows):
    _save(os.path.join(out_dir, name), rows)
    written.append(name)

  for k in range(options.num_directions):
    save(f'{options.method}_direction_{k:02d}.png', render.grid(
        edit_lib.edit_strip_ws(seeds_ws, vectors[k], strengths * sigmas[k], layers)))
  z_cols = jax.random.normal(jax.random.fold_in(key, _COLUMNS_TAG), z.shape)
  cols_ws = stylegan2.truncate(nets.map(g_params, z_cols), w_avg, psi)
  rows, cols = render(seeds_ws), render(cols_ws)
  mixing = edit_lib.style_mixing_ranges(nets)
  for part, part_layers in mixing.items():
    grid = render.grid(edit_lib.style_mix_ws(seeds_ws, cols_ws, part_layers))
    save(f'style_mixing_{part}.png', edit_lib.with_sources(grid, rows, cols))
  save('truncation.png', render.grid(edit_lib.truncation_ws(nets.map(g_params, z), w_avg,
                                                            options.psis)))

  record['layer_sensitivity'] = edit_lib.layer_sensitivity(
      render, nets.map(g_params, jax.random.normal(jax.random.fold_in(key, _SENSITIVITY_TAG),
                                                   (_SENSITIVITY_SAMPLES, nets.z_dim))))
  record = {'step': int(parallel.to_host(state.step)), 'method': options.method,
            'layers': list(layers), 'num_ws': nets.num_ws, 'strengths': strengths.tolist(),
            'truncation_psi': psi, 'truncation_psis': list(options.psis),
            'num_w_samples': options.num_w_samples,
            'style_mixing_layers': {k: list(v) for k, v in mixing.items()}, **record}
  if targets is not None:
    record['projection'] = _project(options, nets, g_params, lpips_params, targets, source,
                                    jax.random.fold_in(key, _PROJECT_TAG),
                                    (vectors[options.index], sigmas[options.index], layers),
                                    render, out_dir, save)
    written.append('projection.npz')
  record['files'] = written + ['edit.json']
  if jax.process_index() == 0:
    files.write_json(os.path.join(out_dir, 'edit.json'), record)
  return out_dir


def _project(options, nets, g_params, lpips_params, targets, source, key, direction, render,
             out_dir, save) -> dict:
  """Projects `targets`, writes projection.png / .npz; returns edit.json's 'projection'."""
  log.info(f'projecting {len(targets)} image(s) into {options.project_space.upper()} '
           f'({options.project_steps} steps).')
  result = edit_lib.project(nets, g_params, lpips_params, targets, key,
                            num_steps=options.project_steps, space=options.project_space,
                            w_samples=options.num_w_samples,
                            log_every=max(1, options.project_steps // 10))
  vector, sigma, layers = direction
  strengths = np.asarray(options.strengths, np.float32)
  ws = edit_lib.edit_strip_ws(result['ws'], vector, strengths * sigma, layers)
  edits = render.grid(ws, {k: np.repeat(v, len(strengths), axis=0)
                          for k, v in result['noise'].items()})
  save('projection.png', np.concatenate([targets[:, None], result['images'][:, None], edits],
                                        axis=1))
  if jax.process_index() == 0:
    files.write_npz(os.path.join(out_dir, 'projection.npz'), targets=targets,
                    images=result['images'], ws=result['ws'],
                    **{f'noise_{k}': v for k, v in result['noise'].items()})
  per_image = {k: np.asarray(result[k]).tolist() for k in ('lpips', 'initial_lpips', 'mse',
                                                           'psnr')}
  return {'source': source, 'space': options.project_space, 'steps': options.project_steps,
          'edit_index': options.index, 'w_std': result['w_std'], **per_image,
          **{f'mean_{k}': float(np.mean(v)) for k, v in per_image.items()}}
