"""Gatys, Ecker & Bethge 2016 (Fig. 3, the content x style grid) and 2015 (texture synthesis),
on photos that ship inside pip packages.

  python experiments/gatys2016_style/reproduce.py               # the grid, textures, timings
  python experiments/gatys2016_style/reproduce.py --smoke       # seconds, checks the plumbing

Each cell is one run of configs/style_transfer.py (or configs/texture_synthesis.py) through the
trainer, in its own workdir under --workdir_root (re-running resumes or skips finished cells).
Writes, into --output_dir: grid.png (first row the styles, first column the contents),
textures.png (each source above its synthesis), strip.png (one run's intermediates at each
evaluation), and prints the final losses and minutes of every cell. `--compare_seconds` > 0
also times L-BFGS against Adam at 256 and 512 px on the default pair: iterations/s, the style
loss each reaches within the same wall time, and its curve (curves.png).
"""
from __future__ import annotations

import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from configs import style_transfer, texture_synthesis  # pylint: disable=wrong-import-position
from genlab import cli, train, viz  # pylint: disable=wrong-import-position
from genlab.data import photos  # pylint: disable=wrong-import-position

CONTENTS = ('skimage:chelsea', 'skimage:astronaut', 'sklearn:china.jpg')
STYLES = ('skimage:immunohistochemistry', 'skimage:hubble_deep_field', 'sklearn:flower.jpg')
TEXTURES = ('skimage:brick', 'skimage:immunohistochemistry', 'sklearn:flower.jpg')

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny images and few steps: checks the plumbing.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/gatys2016_style', 'Where the runs go.')
_OUT = flags.DEFINE_string('output_dir', None, 'Where the PNGs go (default: --workdir_root).')
_SIZE = flags.DEFINE_integer('image_size', None, "The result's longer side (default: the "
                             "config's).")
_STEPS = flags.DEFINE_integer('steps', None, 'Iterations per cell (default: the config\'s).')
_COMPARE = flags.DEFINE_integer('compare_seconds', 0, 'Wall time per optimiser and size in '
                                'the L-BFGS / Adam comparison (0: skip it).')


def _config(module, **keys):
  c = module.get_config('smoke' if _SMOKE.value else None)
  if _SIZE.value:
    c.image_size = _SIZE.value
  if _STEPS.value:
    c.num_train_steps = _STEPS.value
    c.eval_every_steps = c.checkpoint_every_steps = max(1, _STEPS.value // 6)
  c.update(keys)
  return c


def _name(spec: str) -> str:
  return spec.split(':')[-1].split('.')[0]


def _run(config, workdir):
  results = train.train_and_evaluate(config, workdir)
  image = viz.load_png(os.path.join(workdir, 'result.png'))
  return image, results


def _cell(image, side):
  """`image` fitted into a side x side cell (aspect kept, grey margins)."""
  h, w = image.shape[:2]
  f = side / max(h, w)
  small = np.asarray(jax.image.resize(image, (max(1, round(h * f)), max(1, round(w * f)), 3),
                                      'linear', antialias=True))
  cell = np.full((side, side, 3), 0.5, np.float32)
  y, x = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
  cell[y:y + small.shape[0], x:x + small.shape[1]] = np.clip(small, 0, 1)
  return cell


def grid(out_dir, side):
  """Every content x style cell; returns the rows of the table."""
  cells, rows = [np.full((side, side, 3), 1.0, np.float32)], []
  cells += [_cell(photos.load(s, max_side=side), side) for s in STYLES]
  for content in CONTENTS:
    cells.append(_cell(photos.load(content, max_side=side), side))
    for style in STYLES:
      workdir = os.path.join(_ROOT.value, 'transfer', f'{_name(content)}__{_name(style)}')
      image, results = _run(_config(style_transfer, content=content, style=(style,)), workdir)
      cells.append(_cell(image, side))
      rows.append((f'{_name(content)} x {_name(style)}', results))
  viz.save_png(os.path.join(out_dir, 'grid.png'),
               viz.image_grid(np.stack(cells), ncols=len(STYLES) + 1, pad=2, pad_value=1.0))
  return rows


def textures(out_dir, side):
  cells, rows = [], []
  for source in TEXTURES:
    workdir = os.path.join(_ROOT.value, 'texture', _name(source))
    image, results = _run(_config(texture_synthesis, style=(source,)), workdir)
    cells += [_cell(photos.load(source, max_side=side), side), _cell(image, side)]
    rows.append((f'texture {_name(source)}', results))
  pairs = np.stack(cells).reshape(len(TEXTURES), 2, side, side, 3).transpose(1, 0, 2, 3, 4)
  viz.save_png(os.path.join(out_dir, 'textures.png'),
               viz.image_grid(pairs.reshape(-1, side, side, 3), ncols=len(TEXTURES), pad=2,
                              pad_value=1.0))
  return rows


def strip(out_dir, side):
  """The first cell's image at each evaluation: how L-BFGS gets there."""
  workdir = os.path.join(_ROOT.value, 'transfer', f'{_name(CONTENTS[0])}__{_name(STYLES[0])}')
  files = sorted(glob.glob(os.path.join(workdir, 'samples', 'current_*.png')))
  cells = [_cell(viz.load_png(f), side) for f in files]
  viz.save_png(os.path.join(out_dir, 'strip.png'),
               viz.image_grid(np.stack(cells), ncols=len(cells), pad=2, pad_value=1.0))
  return [os.path.basename(f) for f in files]


def compare_optimizers(seconds: float, out_dir: str):
  """L-BFGS and Adam on the default pair at 256 and 512 px, `seconds` of optimisation each
  (compilation and the loss evaluations not counted), in one process so that the machine's
  load is the same for all: iterations/s, the style loss reached, and curves.png."""
  curves = {}
  for size in (256, 512):
    for optimizer in (dict(name='lbfgs', memory_size=10, learning_rate=None),
                      dict(name='adam', learning_rate=0.02)):
      c = style_transfer.get_config()
      c.image_size, c.num_train_steps = size, 1_000_000
      c.optimizer = optimizer
      run = train._Run(c, None)  # pylint: disable=protected-access
      state = run.init_state()
      state, _ = run.train_step(state, {})  # compiles
      jax.block_until_ready(state)
      curve, steps, elapsed = [], 0, 0.0
      while elapsed < seconds:
        t0 = time.perf_counter()
        state, metrics = run.train_step(state, {})
        jax.block_until_ready(metrics)
        elapsed += time.perf_counter() - t0
        steps += 1
        if steps % 5 == 1:
          curve.append((elapsed, float(run.eval_step(state, {}, 0)['style_loss'])))
      curve.append((elapsed, float(run.eval_step(state, {}, 0)['style_loss'])))
      curves[f'{optimizer["name"]} {size} px'] = np.asarray(curve)
      print(f'{optimizer["name"]:<6} {size:>4} px  {steps / elapsed:6.2f} it/s  {steps:>4} '
            f'iterations in {elapsed:.0f} s  style loss {curve[-1][1]:.3g}', flush=True)
  viz.save_png(os.path.join(out_dir, 'curves.png'), _plot(curves))


def _plot(curves: dict) -> np.ndarray:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(6, 4), dpi=100)
  canvas = FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  for name, curve in curves.items():
    ax.plot(curve[:, 0], curve[:, 1], label=name, ls='-' if '256' in name else '--')
  ax.set(xlabel='seconds of optimisation (this 2-core CPU)', ylabel='style loss (Eq. 5)',
         yscale='log', title='L-BFGS vs Adam from the content image')
  ax.legend()
  fig.tight_layout()
  canvas.draw()
  return np.asarray(canvas.buffer_rgba(), np.float32)[..., :3] / 255.0


def main(_):
  out_dir = _OUT.value or _ROOT.value
  os.makedirs(out_dir, exist_ok=True)
  side = 64 if _SMOKE.value else 192
  rows = grid(out_dir, side) + textures(out_dir, side)
  shots = strip(out_dir, side)
  print(f'\n{"cell":<36} {"content loss":>13} {"style loss":>11} {"minutes":>8}')
  for name, r in rows:
    m = r['metrics']
    print(f'{name:<36} {m["content_loss"]:>13.4g} {m["style_loss"]:>11.4g} '
          f'{r["train_seconds"] / 60:>8.2f}')
  print(f'\nwrote grid.png, textures.png and strip.png ({len(shots)} evaluations) to {out_dir}')
  if _COMPARE.value > 0:
    print(f'\nL-BFGS vs Adam, {_COMPARE.value} s each (after compiling):')
    compare_optimizers(_COMPARE.value, out_dir)


if __name__ == '__main__':
  cli.run_main(main)  # genlab's error contract: one line for a mistake, or for Ctrl-C
