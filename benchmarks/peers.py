r"""genlab against its PyTorch peers: every family's train step, timed alternately in one run.

  python benchmarks/peers.py                                  # every row, 5 repeats
  python benchmarks/peers.py --rows=vae_b64,dcgan_b64 --repeats=9 --passive_wait

Why: a speed ratio is only worth something if both sides ran under the same conditions. On a
shared or throttling CPU, two scripts run minutes apart see different loads; here each repeat
times N genlab steps and then N PyTorch steps of the same network and batch (the order swaps
every repeat, ABBA, so that a drift in load favours neither side), and the table reports each
side's median and min-max over the repeats and the ratio of the medians:
'genlab / PyTorch speed' = PyTorch's median step time / genlab's (> 1: genlab is faster).

Each row is one genlab config (with the overrides the peer needs) beside one script of
benchmarks/ that restates its network and step in eager PyTorch (float32, NCHW, CPU):
  vae_b64, vae_b256      configs/vae_mnist.py, batch 64 / 256         torch_vae.py
  dcgan_b64, dcgan_b256  configs/dcgan_mnist.py without R1 (loss.r1_gamma=0, the step the
                         peer takes; README, DCGAN benchmark), batch 64 / 256  torch_dcgan.py
  lstm                   configs/lstm_char_shakespeare.py, 2 x 256, 64 x 128 tokens  torch_lstm.py
  cyclegan               configs/cyclegan_digits_mnist.py: G(32, 3 blocks), D(64, 1 layer),
                         batch 8 per domain                            torch_cyclegan.py
  stylegan2              configs/stylegan2_mnist.py's networks, batch 32: forward and backward
                         of D(G(z)).sum() on both sides, no loss or optimizer (the peer
                         restates the networks, not the training step)  torch_stylegan2.py
  diffusion              configs/ddpm_mnist.py's U-Net DDPM step, batch 64   torch_unet.py
  style_transfer         configs/style_transfer.py (VGG16, avg pooling, the default photos:
                         a 170x256 image): one evaluation of the total loss and its gradient
                         w.r.t. the pixels (L-BFGS's unit of work), no optimizer step; genlab's
                         is the method's own loss, jitted          torch_style_transfer.py
genlab's side is the trainer's own compiled step (genlab.bench.prepare_step / run_steps, the
same as `python -m genlab.bench`) on batches of the real pipeline already on the device, waited
for with block_until_ready; PyTorch's side is each script's make_step(), which ends with
`.item()` and so waits too. Before the repeats, each side runs 3 untimed steps (genlab's
include its compilation).

One process for both frameworks, not one per side: thread pools belong to the libraries, not
to the process (torch's OpenMP pool and XLA's Eigen pool are each sized to the cores either
way), and neither works while the other's steps run, so a second process would isolate
nothing that matters while adding a channel to keep in step. What does matter is OpenMP
spinning: after each operation torch's threads spin for a while before they sleep, which on
a CPU shared with other jobs can make PyTorch's steps (and the genlab steps that follow) much
slower; `--passive_wait` sets OMP_WAIT_POLICY=PASSIVE, as the torch scripts do, and works
here because torch (and so its OpenMP runtime) is imported only after that, in main. XLA's
threads are not set by --threads (they follow the core count).
Both sides run on the CPU: the peers are CPU scripts, so JAX is pinned to its CPU backend.

torch is a benchmark-only dependency: pip install -r requirements-bench.txt
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import statistics
import sys
import time
from typing import Any, Callable, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from genlab import bench  # pylint: disable=g-import-not-at-top,wrong-import-position
from genlab import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from genlab import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from genlab.errors import UserError  # pylint: disable=g-import-not-at-top,wrong-import-position

_ROWS = flags.DEFINE_list('rows', None, 'Rows to run, by name (default: all); see the module '
                          'docstring or an unknown name\'s error for the list.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Alternating timings of each side per row.')
_STEPS = flags.DEFINE_integer('steps', None, 'Steps per timing (default: per row, fewer for '
                              'the slow rows).')
_THREADS = flags.DEFINE_integer('threads', None, 'torch threads; default: the core count.')
_OUTPUT = flags.DEFINE_string('output', os.path.join('runs', 'bench', 'peers.json'),
                              'Write every timing and the table\'s figures as JSON here.')
_PASSIVE = flags.DEFINE_boolean(
    'passive_wait', False, 'Set OMP_WAIT_POLICY=PASSIVE before torch starts: on a CPU shared '
    'with other jobs, OpenMP threads that spin at barriers can make steps ~10x slower.')

_WARMUP = 3      # untimed steps of each side before the repeats (genlab's compile in them)


# -- the two sides of a row: each a function n -> seconds for n steps, waited for ----------------
def _trainer_step(config) -> Callable[[int], float]:
  """genlab's trainer step for `config`, numbered on from call to call."""
  run, state, _, batches = bench.prepare_step(config)
  at = {'state': state, 'step': 0}

  def timed(n):
    at['state'], seconds = bench.run_steps(run, at['state'], batches, at['step'], n)
    at['step'] += n
    return seconds

  return timed


def _stylegan2_forward_backward(config) -> Callable[[int], float]:
  """Gradients of D(G(z)).sum() w.r.t. both networks' parameters, fixed z, new noise each
  call: what torch_stylegan2.py's step computes, with genlab's networks for `config`."""
  from genlab.methods import stylegan2  # pylint: disable=g-import-not-at-top
  nets = stylegan2.networks(config, data_lib.get_info(config).image_shape)
  g_key, d_key, z_key, noise_key = jax.random.split(jax.random.key(config.seed), 4)
  b, res, c = config.batch_size, nets.resolution, nets.image_shape[-1]
  params = (nets.generator.init({'params': g_key, 'noise': g_key},
                                jnp.zeros((1, nets.z_dim), jnp.float32))['params'],
            nets.discriminator.init(d_key, jnp.zeros((b, res, res, c), jnp.float32))['params'])
  z = jax.random.normal(z_key, (b, nets.z_dim), jnp.float32)

  @jax.jit
  def grads(params, z, key):
    def total(params):
      g_params, d_params = params
      images = nets.synthesize(g_params, nets.map(g_params, z), key, 'random')
      return jnp.sum(nets.discriminator.apply({'params': d_params}, images))
    return jax.grad(total)(params)

  return _calls_timer(lambda i: grads(params, z, jax.random.fold_in(noise_key, i)))


def _calls_timer(call: Callable[[int], Any]) -> Callable[[int], float]:
  """n -> seconds for n calls call(i) (i counts on from call to call), waited for to the end:
  a jitted function's, or a PyTorch step's (which waits itself, with `.item()`)."""
  calls = [0]

  def timed(n):
    t0 = time.perf_counter()
    for i in range(calls[0], calls[0] + n):
      out = call(i)
    jax.block_until_ready(out)
    calls[0] += n
    return time.perf_counter() - t0

  return timed


def _style_transfer_loss_and_grad(config) -> Callable[[int], float]:
  """The total loss of genlab's style transfer for `config` and its gradient w.r.t. the image,
  at the image its optimisation starts from: the work of one L-BFGS function evaluation, what
  torch_style_transfer.py's step computes. The loss is the method's own (its eval_step's
  'loss', the objective its L-BFGS minimises, with the content features and style Grams it
  precomputed), not a restatement."""
  from genlab.methods import style_transfer  # pylint: disable=g-import-not-at-top
  method = style_transfer.make(config, data_lib.get_info(config))
  key = jax.random.key(config.seed)
  state = method.init(key)
  if len(state.images) != 1:
    raise UserError(f'style_transfer row: one scale only (config.scales.num='
                    f'{config.scales.num}), the peer has no coarse-to-fine.')

  def loss(image):
    return method.eval_step(state.replace(images=(image,)), None, key)['loss']

  value_and_grad = jax.jit(jax.value_and_grad(loss))
  image = state.images[0]
  return _calls_timer(lambda _: value_and_grad(image))


def _torch_stylegan2(torch, module, config, image_shape):
  ns, model = module.build(torch), config.model
  res = max(4, 1 << (max(image_shape[:2]) - 1).bit_length())  # genlab pads to a power of 2
  common = dict(channel_base=model.channel_base, channel_max=model.channel_max,
                conv_clamp=model.conv_clamp)
  g = ns.Generator(model.z_dim, model.w_dim, res, image_shape[-1],
                   mapping_layers=model.mapping_layers,
                   mapping_lr_multiplier=model.mapping_lr_multiplier, **common)
  d = ns.Discriminator(res, image_shape[-1], model.d_architecture,
                       mbstd_group_size=model.mbstd_group_size,
                       mbstd_num_channels=model.mbstd_num_channels, **common)
  return module.make_step(torch, g, d, config.batch_size, model.z_dim,
                          fused_modconv=model.get('modconv_impl', 'activation') != 'activation')


def _torch_cyclegan(torch, module, config, image_shape):
  m = config.model
  return module.make_step(torch, config.batch_size, image_shape[0], image_shape[-1],
                          m.g_features, m.g_blocks, m.d_features, m.d_layers)


def _torch_style_transfer(torch, module, config, image_shape):
  """The peer's step on genlab's own photos (as the method loads them) and VGG16 weights."""
  del image_shape  # dataset 'none': the images are the config's photos
  from genlab.methods import style_transfer  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=protected-access
  content, styles, style_weights, _ = style_transfer._images(config)
  vgg, params = style_transfer.network(config)
  if (vgg.depth, vgg.preprocessing) != (16, 'torch'):
    raise UserError('style_transfer row: the peer is VGG16 with torchvision\'s weights '
                    '(config.network.name=vgg16).')
  net = module.build(torch, vgg.pooling)
  module.load_flax(torch, net, params)
  return module.make_step(torch, net, content, styles, list(style_weights))


@dataclasses.dataclass(frozen=True)
class Row:
  label: str                      # the table's 'step' column
  config: str                     # configs/<config>.py
  overrides: dict                 # dotted config keys -> values
  peer: str                       # benchmarks/<peer>.py
  steps: int = 5                  # steps per timing unless --steps
  # (torch, peer module, config, data image shape) -> step(); default: make_step(torch, B)
  torch_step: Optional[Callable[..., Callable[[], Any]]] = None
  genlab: Callable[[Any], Callable[[int], float]] = _trainer_step


ROWS = {
    'vae_b64': Row('VAE (Burda MLP), batch 64', 'vae_mnist', {'batch_size': 64}, 'torch_vae',
                   steps=200),
    'vae_b256': Row('VAE, batch 256', 'vae_mnist', {'batch_size': 256}, 'torch_vae',
                    steps=100),
    'dcgan_b64': Row('DCGAN (D + G update, no R1), batch 64', 'dcgan_mnist',
                     {'batch_size': 64, 'loss.r1_gamma': 0.0}, 'torch_dcgan', steps=20),
    'dcgan_b256': Row('DCGAN, batch 256', 'dcgan_mnist',
                      {'batch_size': 256, 'loss.r1_gamma': 0.0}, 'torch_dcgan'),
    'lstm': Row('char-LSTM 2x256, batch 64 x 128 tokens', 'lstm_char_shakespeare', {},
                'torch_lstm',
                torch_step=lambda torch, m, c, _: m.make_step(torch, c.batch_size,
                                                              c.data.seq_len)),
    'cyclegan': Row('CycleGAN (G + D update), batch 8 per domain', 'cyclegan_digits_mnist', {},
                    'torch_cyclegan', torch_step=_torch_cyclegan),
    'stylegan2': Row('StyleGAN2 G + D forward and backward, batch 32', 'stylegan2_mnist', {},
                     'torch_stylegan2', torch_step=_torch_stylegan2,
                     genlab=_stylegan2_forward_backward),
    'diffusion': Row('DDPM U-Net step, batch 64', 'ddpm_mnist', {}, 'torch_unet', steps=10,
                     torch_step=lambda torch, m, c, _: m.make_step(torch, c.batch_size)[0]),
    'style_transfer': Row('style transfer, loss + gradient at 256 px', 'style_transfer', {},
                          'torch_style_transfer', torch_step=_torch_style_transfer,
                          genlab=_style_transfer_loss_and_grad, steps=3),
}


def _peer(name):
  """benchmarks/<name>.py as a module (benchmarks/ is not a package)."""
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def row_config(row: Row):
  config = importlib.import_module(f'configs.{row.config}').get_config()
  with config.unlocked():
    for key, value in row.overrides.items():
      *path, leaf = key.split('.')
      node = config
      for part in path:
        node = node[part]
      node[leaf] = value
  return config


def _summary(seconds, steps):
  ms = [1e3 * s / steps for s in seconds]
  return {'ms': ms, 'ms_median': statistics.median(ms), 'ms_min': min(ms), 'ms_max': max(ms)}


def time_row(torch, row: Row, repeats: int, steps: int) -> dict:
  """Both sides of `row`: built, warmed up, then timed alternately `repeats` times."""
  config = row_config(row)
  t0 = time.perf_counter()
  genlab_timed = row.genlab(config)
  genlab_timed(_WARMUP)
  genlab_warmup_s = time.perf_counter() - t0
  module = _peer(row.peer)
  image_shape = tuple(data_lib.get_info(config).image_shape)
  make = row.torch_step or (lambda torch, m, c, _: m.make_step(torch, c.batch_size))
  torch.manual_seed(0)
  t0 = time.perf_counter()
  torch_step = make(torch, module, config, image_shape)
  torch_timed = _calls_timer(lambda _: torch_step())
  torch_timed(_WARMUP)
  torch_warmup_s = time.perf_counter() - t0
  seconds = {'genlab': [], 'torch': []}
  for r in range(repeats):
    order = ('genlab', 'torch') if r % 2 == 0 else ('torch', 'genlab')
    for side in order:
      seconds[side].append((genlab_timed if side == 'genlab' else torch_timed)(steps))
  genlab_s, torch_s = _summary(seconds['genlab'], steps), _summary(seconds['torch'], steps)
  return {'label': row.label, 'config': f'configs/{row.config}.py', 'overrides': row.overrides,
          'peer': f'benchmarks/{row.peer}.py', 'batch_size': config.batch_size,
          'steps': steps, 'repeats': repeats,
          **{f'genlab_{k}': v for k, v in genlab_s.items()},
          **{f'torch_{k}': v for k, v in torch_s.items()},
          'speed_ratio': torch_s['ms_median'] / genlab_s['ms_median'],
          'genlab_warmup_s': genlab_warmup_s, 'torch_warmup_s': torch_warmup_s}


def _ms(v: float) -> str:
  return f'{v:.0f}' if v >= 100 else f'{v:.1f}' if v >= 10 else f'{v:.2f}'


def _cell(r: dict, side: str) -> str:
  return (f'{_ms(r[f"{side}_ms_median"])} ms ({_ms(r[f"{side}_ms_min"])}-'
          f'{_ms(r[f"{side}_ms_max"])})')


def table(rows: dict) -> str:
  """The README's table: median (min-max) step time of each side and the ratio."""
  lines = ['| step | PyTorch | genlab | genlab / PyTorch speed |', '|---|---|---|---|']
  for r in rows.values():
    lines.append(f'| {r["label"]} | {_cell(r, "torch")} | {_cell(r, "genlab")} | '
                 f'{r["speed_ratio"]:.2f}x |')
  return '\n'.join(lines)


def _selected() -> list[str]:
  names = _ROWS.value or list(ROWS)
  unknown = [n for n in names if n not in ROWS]
  if unknown:
    raise UserError(f'--rows: unknown row {unknown[0]!r}; use a comma list of '
                    f'{", ".join(ROWS)}.')
  for flag, value in (('--repeats', _REPEATS.value), ('--steps', _STEPS.value)):
    if value is not None and value < 1:
      raise UserError(f'{flag}={value}: give an integer >= 1.')
  return names


def main(_argv):
  names = _selected()  # before torch: a wrong name is an error even where torch is missing
  import torch_timing  # pylint: disable=g-import-not-at-top
  threads = _THREADS.value or os.cpu_count()
  torch = torch_timing.import_torch(_PASSIVE.value, threads, error=UserError)
  jax.config.update('jax_platforms', 'cpu')  # the peers run on the CPU
  rows = {}
  for name in names:
    row = ROWS[name]
    print(f'{name}: {row.label} ...', flush=True)
    rows[name] = time_row(torch, row, _REPEATS.value, _STEPS.value or row.steps)
  result = {'torch_version': torch.__version__, 'jax_version': jax.__version__,
            'torch_threads': threads, 'cpu_count': os.cpu_count(),
            'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY', 'default'),
            'device_kind': jax.devices()[0].device_kind, 'repeats': _REPEATS.value,
            'rows': rows}
  print(f'\ntorch {torch.__version__} ({threads} threads, OMP_WAIT_POLICY='
        f'{result["omp_wait_policy"]}) vs genlab on jax {jax.__version__} '
        f'({result["device_kind"]}); median (min-max) per step over {_REPEATS.value} '
        'alternating repeats\n')
  print(table(rows))
  os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
  with open(_OUTPUT.value, 'w') as f:
    json.dump(result, f, indent=1)
  print(f'\nwrote {_OUTPUT.value}')


if __name__ == '__main__':
  cli.run_main(main)
