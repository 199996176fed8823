r"""Forward+backward time of DCGAN-MNIST's strided convolutions on the XLA CPU backend.

Why: XLA CPU runs lhs-dilated convolutions (nn.ConvTranspose's forward pass, a strided
nn.Conv's input-gradient) on a slow generic path. This compares, per layer of the DCGAN for
28x28x1 MNIST (Radford et al. 2016; generator 7->14->28, discriminator 28->14->7, kernel 4,
stride 2, SAME), jitted value-and-gradient (w.r.t. input, kernel and bias) of

  xla             flax's nn.ConvTranspose / nn.Conv (NHWC, as every flax model runs)
  xla_nchw        the same lax convolution in NCHW/OIHW layout (layout check)
  subpixel        genlab.models.layers.SubPixelConvTranspose (one stride-1 conv per phase)
  subpixel_fused  the same with fuse_phases=True (one conv to s*s*F channels)
  space_to_depth  genlab.models.layers.SpaceToDepthConv

and, with --dcgan, one full DCGAN training step (D update + G update, Adam, BatchNorm) for
each "<transposed-conv impl>/<conv impl>" pair, to set against benchmarks/torch_dcgan.py.

XLA flags are read when jax starts, so --xla_flags_sweep runs this script again in a
subprocess per setting (XLA_FLAGS=...) and prints one table.

  python benchmarks/conv_cpu.py --batch_sizes=64,256
  python benchmarks/conv_cpu.py --batch_sizes=64 --dcgan --output=/tmp/conv.json
  python benchmarks/conv_cpu.py --xla_flags_sweep --batch_sizes=64
"""
import json
import os
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

_BATCH = flags.DEFINE_list('batch_sizes', ['64', '256'], 'Batch sizes to time.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed rounds; the median round is reported.')
_MIN_ROUND_S = flags.DEFINE_float('min_round_s', 0.3, 'Each round runs at least this long.')
_LAYERS = flags.DEFINE_list('layers', ['G1', 'G2', 'D1', 'D2'], 'Which layers to time.')
_IMPLS = flags.DEFINE_list(
    'impls', ['xla', 'xla_nchw', 'subpixel', 'subpixel_fused', 'space_to_depth'],
    'Implementations to time (see make_layer); each layer times those that apply to it.')
_DCGAN = flags.DEFINE_boolean('dcgan', False, 'Also time one full DCGAN training step.')
_DCGAN_IMPLS = flags.DEFINE_list(
    'dcgan_impls', ['xla/xla', 'subpixel/xla', 'subpixel_fused/xla', 'subpixel/space_to_depth'],
    'Implementations for the DCGAN step: "<transposed-conv impl>/<conv impl>".')
_OUTPUT = flags.DEFINE_string('output', None, 'Write the results as JSON here.')
_SWEEP = flags.DEFINE_boolean('xla_flags_sweep', False,
                              'Re-run in subprocesses under each XLA_FLAGS setting of SWEEP.')

# Settings tried by --xla_flags_sweep (flag names read from jaxlib 0.10.2's flag table).
SWEEP = {
    'default': '',
    'thunk_runtime=false': '--xla_cpu_use_thunk_runtime=false',   # ignored: "no longer supported"
    'use_xnnpack': '--xla_cpu_use_xnnpack=true',
    'use_onednn': '--xla_cpu_use_onednn=true',
    'onednn_custom_call': '--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true',
    'ynn+conv': '--xla_cpu_experimental_ynn_fusion_type=+individual_convolution',
    'xnn+conv': '--xla_cpu_experimental_xnn_fusion_type=+individual_convolution',
    'xnn_graph_greedy': '--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY',
    'fast_math': '--xla_cpu_enable_fast_math=true',
    'no_multi_thread_eigen': '--xla_cpu_multi_thread_eigen=false',
}

# name: (kind, input spatial size, in channels, out channels)
LAYERS = {
    'G1': ('conv_transpose', 7, 128, 64),    # generator 7x7x128 -> 14x14x64
    'G2': ('conv_transpose', 14, 64, 1),     # generator 14x14x64 -> 28x28x1
    'D1': ('conv', 28, 1, 64),               # discriminator 28x28x1 -> 14x14x64
    'D2': ('conv', 14, 64, 128),             # discriminator 14x14x64 -> 7x7x128
}


def time_fn(fn, *args):
  """Median and min ms per call over REPEATS rounds of >= MIN_ROUND_S each, after warm-up."""
  import jax
  jax.block_until_ready(fn(*args))  # compile
  jax.block_until_ready(fn(*args))
  n, start = 0, time.perf_counter()
  while time.perf_counter() - start < 0.1 or n < 2:
    jax.block_until_ready(fn(*args))
    n += 1
  per_call = (time.perf_counter() - start) / n
  iters = max(1, int(_MIN_ROUND_S.value / per_call))
  rounds = []
  for _ in range(_REPEATS.value):
    start = time.perf_counter()
    for _ in range(iters):
      out = fn(*args)
    jax.block_until_ready(out)
    rounds.append(1e3 * (time.perf_counter() - start) / iters)
  rounds.sort()
  return rounds[len(rounds) // 2], rounds[0]


def layer_fns(kind, impl, c_in, c_out):
  """(init(key, x), apply(params, x)) of one k4 s2 SAME layer in the given implementation."""
  import flax.linen as nn
  import jax.numpy as jnp
  from jax import lax
  from genlab.models import layers
  kw = dict(features=c_out, kernel_size=(4, 4), strides=(2, 2), padding='SAME')
  if impl == 'xla_nchw':
    # The flax layer's parameters, run by the same lax op with NCHW/OIHW dimension numbers.
    flax_layer = nn.ConvTranspose(**kw) if kind == 'conv_transpose' else nn.Conv(**kw)
    dn = ('NCHW', 'OIHW', 'NCHW')

    def apply(params, x_NCHW):
      w_OIHW = params['params']['kernel'].transpose(3, 2, 0, 1)
      if kind == 'conv_transpose':
        y = lax.conv_transpose(x_NCHW, w_OIHW, (2, 2), 'SAME', dimension_numbers=dn)
      else:
        y = lax.conv_general_dilated(x_NCHW, w_OIHW, (2, 2), 'SAME', dimension_numbers=dn)
      return y + params['params']['bias'][None, :, None, None]

    init = lambda key, x_NCHW: flax_layer.init(key, jnp.transpose(x_NCHW, (0, 2, 3, 1)))
    return init, apply
  layer = make_layer(kind, impl, **kw)
  return layer.init, layer.apply


IMPLS = {'conv_transpose': ('xla', 'xla_nchw', 'subpixel', 'subpixel_fused'),
         'conv': ('xla', 'xla_nchw', 'space_to_depth')}


def make_layer(kind, impl, **kw):
  """impl 'xla': flax's layer; 'subpixel' / 'subpixel_fused': SubPixelConvTranspose with one
  conv per phase / one fused conv; 'space_to_depth': SpaceToDepthConv."""
  from genlab.models import layers
  if kind == 'conv_transpose':
    if impl == 'subpixel_fused':
      return layers.conv_transpose('subpixel', fuse_phases=True, **kw)
    return layers.conv_transpose(impl, **kw)
  return layers.conv(impl, **kw)


def make_dcgan_step(batch_size, impl):
  """(jitted step(state, batch) -> state, state, batch) of DCGAN for 28x28x1 (NHWC).

  The network and step of benchmarks/torch_dcgan.py (Radford et al. 2016, the PyTorch
  example adapted to 28x28): one D update on BCE(D(x), 1) + BCE(D(G(z)), 0), then one G
  update on the non-saturating loss BCE(D(G(z)), 1) with the same G(z) (its VJP is kept from
  the D step, as PyTorch reuses the graph), Adam(2e-4, b1=0.5, b2=0.999), BatchNorm in
  training mode.
  """
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import optax
  k4 = dict(kernel_size=(4, 4), strides=(2, 2), padding='SAME')
  t_impl, c_impl = impl.split('/')

  class Generator(nn.Module):
    @nn.compact
    def __call__(self, z_BxZ):
      h = nn.Dense(7 * 7 * 128, use_bias=False)(z_BxZ).reshape(-1, 7, 7, 128)
      h = nn.relu(nn.BatchNorm(use_running_average=False)(h))
      h = make_layer('conv_transpose', t_impl, features=64, use_bias=False, **k4)(h)
      h = nn.relu(nn.BatchNorm(use_running_average=False)(h))
      return jnp.tanh(make_layer('conv_transpose', t_impl, features=1, **k4)(h))

  class Discriminator(nn.Module):
    @nn.compact
    def __call__(self, x_BxHxWxC):
      h = nn.leaky_relu(make_layer('conv', c_impl, features=64, **k4)(x_BxHxWxC), 0.2)
      h = make_layer('conv', c_impl, features=128, use_bias=False, **k4)(h)
      h = nn.leaky_relu(nn.BatchNorm(use_running_average=False)(h), 0.2)
      return nn.Dense(1)(h.reshape(h.shape[0], -1))[:, 0]

  gen, disc, opt = Generator(), Discriminator(), optax.adam(2e-4, b1=0.5, b2=0.999)
  z = jax.random.normal(jax.random.key(0), (batch_size, 100))
  x = jax.random.uniform(jax.random.key(1), (batch_size, 28, 28, 1), minval=-1, maxval=1)
  g_vars, d_vars = gen.init(jax.random.key(2), z), disc.init(jax.random.key(3), x)
  state = dict(g=g_vars, d=d_vars, g_opt=opt.init(g_vars['params']),
               d_opt=opt.init(d_vars['params']))

  def bce(logits, label):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))

  def d_apply(params, stats, images):
    return disc.apply({'params': params, 'batch_stats': stats}, images, mutable=['batch_stats'])

  @jax.jit
  def step(state, batch):
    x, z = batch
    g_fn = lambda p: gen.apply({'params': p, 'batch_stats': state['g']['batch_stats']}, z,
                               mutable=['batch_stats'])
    fake, g_vjp, g_stats = jax.vjp(g_fn, state['g']['params'], has_aux=True)

    def d_loss(params):
      real_logits, s = d_apply(params, state['d']['batch_stats'], x)
      fake_logits, s = d_apply(params, s['batch_stats'], fake)
      return bce(real_logits, 1.0) + bce(fake_logits, 0.0), s

    d_grads, d_stats = jax.grad(d_loss, has_aux=True)(state['d']['params'])
    d_updates, d_opt = opt.update(d_grads, state['d_opt'])
    d_params = optax.apply_updates(state['d']['params'], d_updates)

    def g_loss(images):
      logits, s = d_apply(d_params, d_stats['batch_stats'], images)
      return bce(logits, 1.0), s

    dfake, d_stats = jax.grad(g_loss, has_aux=True)(fake)
    (g_grads,) = g_vjp(dfake)
    g_updates, g_opt = opt.update(g_grads, state['g_opt'])
    g_params = optax.apply_updates(state['g']['params'], g_updates)
    return dict(g={'params': g_params, **g_stats}, d={'params': d_params, **d_stats},
                g_opt=g_opt, d_opt=d_opt)

  return step, state, (x, z)


def bench_layers(batch_size):
  import jax
  import jax.numpy as jnp
  rows = []
  for name in [n for n in _LAYERS.value if n]:
    kind, size, c_in, c_out = LAYERS[name]
    for impl in [i for i in _IMPLS.value if i in IMPLS[kind]]:
      shape = ((batch_size, c_in, size, size) if impl == 'xla_nchw'
               else (batch_size, size, size, c_in))
      x = jax.random.normal(jax.random.key(0), shape)
      init, apply = layer_fns(kind, impl, c_in, c_out)
      params = init(jax.random.key(1), x)

      @jax.jit
      def fwd_bwd(params, x, apply=apply):
        # A fixed linear functional of y: its gradient is the cotangent cos(y's index).
        loss = lambda p, x: jnp.mean(apply(p, x) ** 2)
        return jax.value_and_grad(loss, argnums=(0, 1))(params, x)

      fwd = jax.jit(apply)
      med, best = time_fn(fwd_bwd, params, x)
      fmed, _ = time_fn(fwd, params, x)
      rows.append(dict(layer=name, kind=kind, impl=impl, batch_size=batch_size,
                       fwd_bwd_ms=round(med, 3), fwd_bwd_min_ms=round(best, 3),
                       fwd_ms=round(fmed, 3)))
      print(f'{name} {kind:14s} {impl:9s} B={batch_size:4d}  fwd+bwd {med:8.2f} ms '
            f'(min {best:7.2f})  fwd {fmed:7.2f} ms', flush=True)
  return rows


def main(argv):
  del argv
  if _SWEEP.value:
    return sweep()
  import jax
  print(f'jax {jax.__version__}, devices {jax.devices()}, '
        f'XLA_FLAGS={os.environ.get("XLA_FLAGS", "")!r}', flush=True)
  results = dict(xla_flags=os.environ.get('XLA_FLAGS', ''), layers=[], dcgan=[])
  for b in _BATCH.value:
    results['layers'] += bench_layers(int(b))
  if _DCGAN.value:
    for b in _BATCH.value:
      for impl in _DCGAN_IMPLS.value:
        step, state, batch = make_dcgan_step(int(b), impl)
        med, best = time_fn(step, state, batch)
        results['dcgan'].append(dict(impl=impl, batch_size=int(b), step_ms=round(med, 3),
                                     step_min_ms=round(best, 3),
                                     examples_per_s=round(1e3 * int(b) / med, 1)))
        print(f'DCGAN step impl={impl:24s} B={b:>4s}  {med:8.2f} ms (min {best:7.2f})  '
              f'{1e3 * int(b) / med:8.1f} examples/s', flush=True)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(results, f, indent=1)


def sweep():
  """Runs this script once per SWEEP setting and prints fwd+bwd ms per (setting, layer, impl)."""
  import tempfile
  table = {}
  passthrough = [a for a in sys.argv[1:] if not a.startswith('--xla_flags_sweep')
                 and not a.startswith('--output')]
  for label, xla_flags in SWEEP.items():
    with tempfile.NamedTemporaryFile(suffix='.json') as tmp:
      env = dict(os.environ, XLA_FLAGS=xla_flags, JAX_PLATFORMS='cpu')
      proc = subprocess.run([sys.executable, os.path.abspath(__file__), *passthrough,
                             f'--output={tmp.name}'], env=env, capture_output=True, text=True)
      if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ['?'])[-1]
        print(f'{label:22s} FAILED: {err[:150]}', flush=True)
        table[label] = dict(error=err)
        continue
      with open(tmp.name) as f:
        table[label] = json.load(f)
    cells = '  '.join(f'{r["layer"]}/{r["impl"]}/B{r["batch_size"]}={r["fwd_bwd_ms"]:.2f}'
                      for r in table[label]['layers'])
    dc = '  '.join(f'dcgan/{r["impl"]}/B{r["batch_size"]}={r["step_ms"]:.1f}'
                   for r in table[label]['dcgan'])
    print(f'{label:22s} {cells} {dc}', flush=True)
  if _OUTPUT.value:
    with open(_OUTPUT.value, 'w') as f:
      json.dump(table, f, indent=1)


if __name__ == '__main__':
  app.run(main)
