"""CycleGAN: unpaired translation between two image domains (Zhu et al. 2017), as the official
code (junyanz/pytorch-CycleGAN-and-pix2pix, models/cycle_gan_model.py) trains it.

Domains a and b come from the data layer's `domains` mode (config.data.domains); G_ab maps a to
b, G_ba maps b to a, and D_a / D_b tell real images of their own domain from translations into
it. Images are in [-1, 1] inside the networks. With x_a, x_b a batch of each domain (unpaired):
  adversarial (LSGAN, Mao et al. 2017; Zhu et al. Sec. 3.1 and 4 "we replace the negative log
               likelihood objective by a least-squares loss"):
               G: mean (D_b(G_ab(x_a)) - 1)^2 + mean (D_a(G_ba(x_b)) - 1)^2
               D_b: 0.5 [mean (D_b(x_b) - 1)^2 + mean D_b(pool_b(G_ab(x_a)))^2], D_a likewise
               (the discriminator loss halved: Sec. 4 "we divide the objective by 2 while
               optimizing D")
  cycle        lambda_a |G_ba(G_ab(x_a)) - x_a|_1 + lambda_b |G_ab(G_ba(x_b)) - x_b|_1
               (Zhu et al. Eq. 2, lambda = 10 in Sec. 4; means over pixels)
               (optional, beyond the paper: loss.cycle_noise = sigma > 0 cycles G_ab(x_a) + n,
               n ~ N(0, sigma^2) per pixel in [-1, 1] units, and likewise for b: Bashkirova
               et al. 2019, "Adversarial Self-Defense for Cycle-Consistent GANs", Sec. 4. A
               generator can pass the cycle by hiding its input in a faint signal of the
               translation (Chu et al. 2017, "CycleGAN, a Master of Steganography") while the
               visible digit changes; noise drowns that signal, so the visible digit must
               carry the content.)
  identity     lambda_idt (lambda_b |G_ab(x_b) - x_b|_1 + lambda_a |G_ba(x_a) - x_a|_1)
               (Sec. 5.2, Taigman et al. 2017; the official lambda_identity = 0.5)
  semantic     (optional, beyond the paper) CyCADA's semantic consistency, Hoffman et al. 2018
               Eq. 5: CE(f_S(G_ab(x_a)), argmax f_S(x_a)) + CE(f_S(G_ba(x_b)), argmax f_S(x_b)),
               f_S a fixed classifier pretrained on the source domain a.
One step is the official optimize_parameters: the generators' update with both D fixed, then
both D's update on the same translations, passed through the image pools (`pool_query`).

Evaluation: cycle-reconstruction L1 in [0, 1] pixel units, the discriminators' scores, and,
where the config names a classifier for a domain (eval.domain_classifiers), the accuracy of the
target domain's classifier on translations of labelled source images (CyCADA's measure of
content preservation), its "source only" baseline on untranslated images, the label-flip rate
and the FID of translations against the target domain in that classifier's features.
"""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from genlab import batch_split
from genlab import methods
from genlab import optim
from genlab import viz
from genlab.config_checks import count, natural, non_negative
from genlab.errors import UserError, one_of
from genlab.metrics import sample_quality
from genlab.models import cyclegan as cyclegan_models
from genlab.models import layers

DATA = 'domains'
DOMAINS = ('a', 'b')
DIRECTIONS = ('a_to_b', 'b_to_a')
# config.batch_split='auto' on the CPU (genlab/batch_split.py): the step at 8 images per domain
# took 324 ms whole, 253 / 280 / 342 ms in 2 / 4 / 8 slices.
CPU_SPLITS = 2

CONFIG_RANGES = {
    'model.g_features': count(), 'model.g_blocks': natural('0: no residual blocks'),
    'model.g_downsampling': count(), 'model.d_features': count(),
    'model.d_layers': count('1: a 16x16 patch, 3: the 70x70 PatchGAN'),
    'loss.cycle_weight_*': non_negative('0 turns the cycle loss of that domain off'),
    'loss.identity_weight': non_negative('0 turns the identity loss off'),
    'loss.semantic_weight': non_negative('0 turns the semantic loss off'),
    'loss.pool_size': natural('0: no pool, D sees the newest translations only'),
    'loss.cycle_noise': non_negative('0: the translation is cycled as it is'),
    'augment.load_size': natural('0: no resize-and-crop jitter'),
    'viz.num_images': count(),
}


@flax.struct.dataclass
class ImagePool:
  """The official util/image_pool.py ImagePool as arrays: `images` (P, H, W, C) holds the first
  `count` past translations (the rest is zeros until the pool is full)."""
  images: jax.Array
  count: jax.Array


@flax.struct.dataclass
class CycleGANState:
  step: jax.Array
  g_params: Any      # {'ab': G_ab, 'ba': G_ba}
  d_params: Any      # {'a': D_a, 'b': D_b}: D_x judges images of domain x
  g_opt_state: Any
  d_opt_state: Any
  pools: Any         # {'a': ImagePool of translations into a, 'b': ... into b}


def empty_pool(size: int, image_shape) -> ImagePool:
  return ImagePool(images=jnp.zeros((size, *image_shape), jnp.float32),
                   count=jnp.zeros((), jnp.int32))


def pool_query(pool: ImagePool, images_BxHxWxC, key) -> tuple[ImagePool, jax.Array]:
  """The official ImagePool.query, image by image in batch order (Zhu et al. Sec. 4, after
  Shrivastava et al. 2017): while the pool is filling, store the new image and return it; once
  full, with probability 0.5 return a uniformly chosen stored image and store the new one in its
  place, else return the new image. A pool of size 0 returns the batch unchanged."""
  size = pool.images.shape[0]
  if size == 0:
    return pool, images_BxHxWxC

  def one(pool, inputs):
    image, key = inputs
    swap_key, index_key = jax.random.split(key)
    filling = pool.count < size
    swap = jax.random.uniform(swap_key) > 0.5
    index = jax.random.randint(index_key, (), 0, size)
    stored = pool.images[index]
    write = jnp.where(filling, pool.count, index)
    value = jnp.where(filling | swap, image, pool.images[write])
    images = jax.lax.dynamic_update_index_in_dim(pool.images, value, write, 0)
    out = jnp.where(~filling & swap, stored, image)
    return ImagePool(images, jnp.minimum(pool.count + 1, size)), out

  keys = jax.random.split(key, images_BxHxWxC.shape[0])
  return jax.lax.scan(one, pool, (images_BxHxWxC, keys))


def jitter(x_BxHxWxC, key, load_size: int, flip: bool):
  """The official training preprocessing (--preprocess resize_and_crop, no_flip=False) on device:
  resize to load_size x load_size (bicubic), a random crop back to H x W per image, a random
  horizontal flip per image. load_size 0 and flip False leave the batch as it is."""
  b, h, w, c = x_BxHxWxC.shape
  crop_key, flip_key = jax.random.split(key)
  if load_size:
    big = jax.image.resize(x_BxHxWxC, (b, load_size, load_size, c), 'bicubic')
    tops = jax.random.randint(crop_key, (b,), 0, load_size - h + 1)
    lefts = jax.random.randint(jax.random.fold_in(crop_key, 1), (b,), 0, load_size - w + 1)
    x_BxHxWxC = jax.vmap(lambda im, t, l: jax.lax.dynamic_slice(im, (t, l, 0), (h, w, c)))(
        big, tops, lefts)
  if flip:
    mirrored = jax.random.uniform(flip_key, (b, 1, 1, 1)) < 0.5
    x_BxHxWxC = jnp.where(mirrored, x_BxHxWxC[:, :, ::-1], x_BxHxWxC)
  return x_BxHxWxC


def _lsgan(scores, target: float):
  """mean (D(x) - target)^2 over patches and batch (nn.MSELoss, the official GANLoss('lsgan'))."""
  return jnp.mean(jnp.square(scores - target))


def _l1(x, y):
  return jnp.mean(jnp.abs(x - y))


def _cross_entropy(logits_BxK, labels_B):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits_BxK, labels_B))


# -- construction ------------------------------------------------------------------------------
def _domain_shapes(data_info) -> dict[str, tuple[int, int, int]]:
  domains = getattr(data_info, 'domains', None) or {}
  if sorted(domains) != list(DOMAINS):
    raise UserError(f'cyclegan translates between two domains named a and b; the config has '
                    f'{sorted(domains) or "none"}: set config.data.domains.a and .b.')
  shapes = {k: tuple(int(d) for d in domains[k].image_shape) for k in DOMAINS}
  (ha, wa, ca), (hb, wb, cb) = shapes['a'], shapes['b']
  if ca != cb:
    raise UserError(
        f'domain a has {ca}-channel images and domain b {cb}-channel ones, and no conversion is '
        f'asked for: set --config.data.domains.{"a" if ca < cb else "b"}.channels={max(ca, cb)} '
        f'(gray to RGB) or --config.data.domains.{"a" if ca > cb else "b"}.channels={min(ca, cb)}'
        ' (RGB to luminance).')
  if (ha, wa) != (hb, wb):
    raise UserError(f'domain a has {ha}x{wa} images and domain b {hb}x{wb}: the generators keep '
                    'the size, so give both one size, e.g. --config.data.domains.a.image_size='
                    f'{hb} (and .center_crop for non-square images).')
  return shapes


def _classifier(config, arg: str):
  """genlab's digit classifier trained with configs/classifier_mnist.py:<arg> ('' its default)."""
  from genlab.pretrained import digit_classifier  # pylint: disable=g-import-not-at-top
  return digit_classifier.load(arg or None, data_dir=config.get('data_dir', None))


def _judges(config) -> dict[str, Any]:
  """The classifiers of eval.domain_classifiers ({'a': arg, 'b': arg}; None: none for that
  domain) that read the images of each domain."""
  args = methods.section(config, 'eval').get('domain_classifiers', None) or {}
  return {k: _classifier(config, args[k]) for k in DOMAINS if args.get(k, None) is not None}


def _settings(config):
  loss = methods.section(config, 'loss')
  return dict(
      cycle={k: float(loss.get(f'cycle_weight_{k}', 10.0)) for k in DOMAINS},
      identity=float(loss.get('identity_weight', 0.5)),
      semantic=float(loss.get('semantic_weight', 0.0)),
      cycle_noise=float(loss.get('cycle_noise', 0.0)),
      pool_size=int(loss.get('pool_size', 50)))


def make(config: ml_collections.ConfigDict, data_info) -> methods.Method:
  shapes = _domain_shapes(data_info)
  s = _settings(config)
  image_shape = shapes['a']
  model = methods.section(config, 'model')
  dtype = jnp.dtype(one_of(model.get('dtype', 'float32'), ('float32', 'bfloat16'), 'model.dtype'))
  generator = cyclegan_models.ResnetGenerator(
      out_channels=image_shape[-1], features=int(model.get('g_features', 64)),
      num_blocks=int(model.get('g_blocks', 9)),
      num_downsampling=int(model.get('g_downsampling', 2)),
      conv_transpose_impl=layers.backend_impl(
          model.get('conv_transpose_impl', 'auto'), cyclegan_models.CONV_TRANSPOSE_IMPLS, 'fast',
          'model.conv_transpose_impl'), dtype=dtype)
  discriminator = cyclegan_models.PatchDiscriminator(
      features=int(model.get('d_features', 64)), num_layers=int(model.get('d_layers', 3)),
      dtype=dtype)
  g_tx, g_schedule = optim.make_optimizer(config, 'g_optimizer')
  d_tx, _ = optim.make_optimizer(config, 'd_optimizer')
  judges = _judges(config)
  semantic_arg = methods.section(config, 'loss').get('semantic_classifier', None)
  if s['semantic'] > 0 and semantic_arg is None:
    raise UserError(f'loss.semantic_weight={s["semantic"]} needs CyCADA\'s f_S, a classifier '
                    'pretrained on the source domain a: set loss.semantic_classifier to its '
                    'configs/classifier_mnist.py argument, or loss.semantic_weight=0.')
  source = _classifier(config, semantic_arg) if s['semantic'] > 0 else None
  num_viz = int(methods.section(config, 'viz').get('num_images', 8))
  augment = methods.section(config, 'augment')
  load_size, flip = int(augment.get('load_size', 0)), bool(augment.get('flip', False))
  if load_size and load_size < max(image_shape[:2]):
    raise UserError(f'augment.load_size={load_size} is smaller than the {image_shape[0]}x'
                    f'{image_shape[1]} images it is cropped back to: give at least '
                    f'{max(image_shape[:2])}, or 0 for no jitter.')
  other = {'a': 'b', 'b': 'a'}
  direction_of = {'a': 'ab', 'b': 'ba'}  # the generator that maps a domain's images away

  def to_model(x):
    return x * 2.0 - 1.0

  def to_unit(x):
    return (x + 1.0) * 0.5

  def translate(g_params, x, source_domain):
    return generator.apply({'params': g_params[direction_of[source_domain]]}, x)

  def judge(d_params, x, domain):
    return discriminator.apply({'params': d_params[domain]}, x)

  def init(key):
    keys = dict(zip(('ab', 'ba', 'a', 'b'), jax.random.split(key, 4)))
    x = jnp.zeros((1, *image_shape), jnp.float32)
    g_params = {k: generator.init(keys[k], x)['params'] for k in ('ab', 'ba')}
    d_params = {k: discriminator.init(keys[k], x)['params'] for k in DOMAINS}
    return CycleGANState(
        step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
        g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
        pools={k: empty_pool(s['pool_size'], image_shape) for k in DOMAINS})

  def semantic_loss(fake, real_unit, source_domain):
    """CyCADA Eq. 5, one term: f_S's label of the input kept by its translation."""
    labels = jnp.argmax(source.logits(source.params, real_unit), axis=-1)
    return _cross_entropy(source.logits(source.params, to_unit(fake)), labels)

  def generator_loss(g_params, d_params, real, key):
    fake = {other[k]: translate(g_params, real[k], k) for k in DOMAINS}  # fake['b'] = G_ab(x_a)
    terms = {}
    for i, k in enumerate(DOMAINS):  # k: the domain an image starts in
      terms[f'g_adv_{other[k]}'] = _lsgan(judge(d_params, fake[other[k]], other[k]), 1.0)
      to_cycle = fake[other[k]]
      if s['cycle_noise'] > 0:
        to_cycle = to_cycle + s['cycle_noise'] * jax.random.normal(
            jax.random.fold_in(key, i), to_cycle.shape, to_cycle.dtype)
      cycled = translate(g_params, to_cycle, other[k])
      terms[f'cycle_{k}'] = s['cycle'][k] * _l1(cycled, real[k])
      if s['identity'] > 0:  # G_ab(x_b) should be x_b: "identity" of the map into b
        same = translate(g_params, real[other[k]], k)
        terms[f'identity_{other[k]}'] = (s['identity'] * s['cycle'][other[k]] *
                                         _l1(same, real[other[k]]))
      if s['semantic'] > 0:
        terms[f'semantic_{k}'] = s['semantic'] * semantic_loss(
            fake[other[k]], to_unit(real[k]), k)
    return sum(terms.values()), (fake, terms)

  def discriminator_loss(d_params, real, shown):
    terms = {}
    for k in DOMAINS:
      real_scores, fake_scores = judge(d_params, real[k], k), judge(d_params, shown[k], k)
      terms[f'd_{k}'] = 0.5 * (_lsgan(real_scores, 1.0) + _lsgan(fake_scores, 0.0))
      terms[f'd_{k}_real'], terms[f'd_{k}_fake'] = jnp.mean(real_scores), jnp.mean(fake_scores)
    return terms['d_a'] + terms['d_b'], terms

  splits = batch_split.from_config(config, CPU_SPLITS)

  def train_step(state, batch, key):
    real = {k: jitter(to_model(batch[k]['image']), jax.random.fold_in(key, 10 + i), load_size,
                      flip) for i, k in enumerate(DOMAINS)}
    g_loss_fn = lambda g_params, rows, key: generator_loss(g_params, state.d_params, rows, key)
    (g_loss, (fake, g_terms)), g_grads = batch_split.value_and_grad(
        g_loss_fn, splits, has_aux=True)(state.g_params, real, jax.random.fold_in(key, 20))
    g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    pools, shown = {}, {}
    for i, k in enumerate(DOMAINS):
      pools[k], shown[k] = pool_query(state.pools[k], jax.lax.stop_gradient(fake[k]),
                                      jax.random.fold_in(key, i))
    d_loss_fn = lambda d_params, rows, _: discriminator_loss(d_params, *rows)
    (_, d_terms), d_grads = batch_split.value_and_grad(d_loss_fn, splits, has_aux=True)(
        state.d_params, (real, shown))
    d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, d_updates)
    new_state = CycleGANState(step=state.step + 1, g_params=g_params, d_params=d_params,
                              g_opt_state=g_opt_state, d_opt_state=d_opt_state, pools=pools)
    metrics = dict(g_terms, **d_terms, loss=g_loss, g_loss=g_loss,
                   g_grad_norm=optax.global_norm(g_grads),
                   d_grad_norm=optax.global_norm(d_grads),
                   pool_fill=pools['a'].count.astype(jnp.float32),
                   learning_rate=jnp.asarray(g_schedule(state.step), jnp.float32))
    return new_state, metrics

  def translations(state, x_unit, source_domain):
    """x (B, H, W, C) in [0, 1] of `source_domain` -> (translation, its cycle back), in [0, 1]."""
    fake = translate(state.g_params, to_model(x_unit), source_domain)
    back = translate(state.g_params, fake, other[source_domain])
    return to_unit(fake), to_unit(back)

  def eval_step(state, batch, key):
    """Sums per domain k over its real rows, with the row counts '_n_k' (summarize divides)."""
    del key
    sums = {}
    for k in DOMAINS:
      x, mask = batch[k]['image'], batch[k]['mask']
      fake, back = translations(state, x, k)
      per_row = {
          f'cycle_l1_{k}': jnp.mean(jnp.abs(back - x), axis=(1, 2, 3)),
          f'd_{k}_real': jnp.mean(judge(state.d_params, to_model(x), k), axis=(1, 2, 3)),
          f'd_{other[k]}_translated': jnp.mean(
              judge(state.d_params, to_model(fake), other[k]), axis=(1, 2, 3))}
      judge_net = judges.get(other[k])
      if judge_net is not None:
        predicted = jnp.argmax(judge_net.logits(judge_net.params, fake), axis=-1)
        per_row[f'accuracy_{k}_to_{other[k]}'] = (
            predicted == batch[k]['label']).astype(jnp.float32)
      sums.update({name: jnp.sum(v * mask) for name, v in per_row.items()})
      sums[f'_n_{k}'] = jnp.sum(mask)
    return sums

  # The domain whose rows each eval metric averages over (its '_n_' count).
  rows_of = {}
  for k in DOMAINS:
    rows_of.update({f'cycle_l1_{k}': k, f'd_{k}_real': k, f'd_{other[k]}_translated': k,
                    f'accuracy_{k}_to_{other[k]}': k})

  def summarize(means):
    return {name: value / max(means[f'_n_{rows_of[name]}'], 1e-12)
            for name, value in means.items() if not name.startswith('_n_')}

  jit_translations = jax.jit(translations, static_argnums=2)

  def visualize(state, key, batch):
    """Fixed eval images: rows input | translation | cycle back, for a -> b -> a and b -> a -> b."""
    del key
    grids = {}
    for k in DOMAINS:
      x = np.asarray(batch[k]['image'][:num_viz])
      fake, back = (np.asarray(v) for v in jit_translations(state, x, k))
      grids[f'{k}_to_{other[k]}_to_{k}'] = viz.image_grid(
          np.concatenate([x, fake, back]), ncols=len(x))
    return grids

  def analyze(state, key, arrays):
    """Whole test splits: CyCADA's content preservation and FID-in-domain, per direction,
    against the source-only baseline (the target's classifier on untranslated images)."""
    del key
    test = arrays('test')
    metrics, pictures = {}, {}
    for k in DOMAINS:
      t = other[k]
      x, labels = test[k]['image'], test[k]['label']
      fake, back = methods.map_chunks(
          lambda chunk, _: jit_translations(state, chunk, k), x, chunk=250)
      metrics[f'cycle_l1_{k}'] = float(np.mean(np.abs(back - x)))
      n = min(len(x), 4 * num_viz)
      pictures[f'test_{k}_to_{t}'] = viz.image_grid(
          np.stack([x[:n], fake[:n], back[:n]], axis=1).reshape(-1, *x.shape[1:]), ncols=12)
      if t not in judges:
        continue
      target_net, target_x = judges[t], test[t]['image']
      feats_fake, probs_fake = target_net.embed(fake)
      feats_src, probs_src = target_net.embed(x)
      feats_target, _ = target_net.embed(target_x)
      predicted = probs_fake.argmax(-1)
      name = f'{k}_to_{t}'
      metrics[f'accuracy_{name}'] = float(np.mean(predicted == labels))
      metrics[f'source_only/accuracy_{name}'] = float(np.mean(probs_src.argmax(-1) == labels))
      metrics[f'fid_{name}'] = sample_quality.fid(feats_fake, feats_target)
      metrics[f'source_only/fid_{name}'] = sample_quality.fid(feats_src, feats_target)
      if k in judges:  # flips: inputs the source's own classifier reads right, translated wrong
        read_right = judges[k].embed(x)[1].argmax(-1) == labels
        metrics[f'label_flip_{name}'] = float(np.mean(predicted[read_right] != labels[read_right]))
    return metrics, pictures

  def reconstruct(state, batch, key):
    """--mode=sample: translations of the test images of the source domain of
    config.sample.direction ('a_to_b' or 'b_to_a'), in [0, 1] at the target's shape."""
    del key
    direction = one_of(methods.section(config, 'sample').get('direction', 'a_to_b'), DIRECTIONS,
                       'sample.direction')
    k = direction[0]
    fake, _ = translations(state, batch[k]['image'], k)
    return {'input': batch[k]['image'], 'output': fake, 'label': batch[k]['label'],
            'mask': batch[k]['mask']}

  return methods.Method(init=init, train_step=train_step, eval_step=eval_step,
                        summarize=summarize, visualize=visualize, analyze=analyze,
                        reconstruct=reconstruct)
