"""Method families, found by name: `config.method = 'vae'` -> `genlab.methods.vae`.

Every method module exposes `make(config, data_info) -> Method`, and may set `DATA = 'text'`
or `DATA = 'none'` (default 'images': what it trains on; 'none' for methods that optimise
their own images through a fixed network, which take `config.dataset = 'none'`) and `CONFIG_RANGES` (the ranges of its own config keys,
genlab/config_checks.py). The trainer never imports a method any other way, and never knows
the objective: it only calls the functions below.

Conventions for every function in a `Method` (all pure, all jit-compiled by the trainer):
  state       a pytree whose `step` field is an int32 scalar (e.g. flax TrainState); replicated.
  batch       dict of global arrays sharded on the leading axis over the mesh's 'data' axis:
              'image' float32 (B, H, W, C) in [0, 1] (already binarized if the config asks),
              'label' int32 (B,); for text, 'inputs' and 'targets' int32 (B, T) (and 'reset'
              or 'weights', genlab/data/text.py). Eval batches also carry 'mask' float32
              (B,): 1 real, 0 pad.
  key         a `jax.random.key`, derived by the trainer as fold_in(key(seed), step) (plus a
              purpose tag), so every draw is reproducible on resume.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from genlab import config_checks
from genlab.errors import UserError

Metrics = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class Method:
  # key -> state. Jitted with a replicated out-sharding.
  init: Callable[[jax.Array], Any]
  # (state, batch, key) -> (state, metrics): metrics are scalar means over the global batch
  # and must contain 'loss' (shown in the progress line).
  train_step: Callable[[Any, dict, jax.Array], tuple[Any, Metrics]]
  # (state, batch, key) -> metrics as *sums* over the real (mask == 1) examples; the trainer
  # adds them up over the split and divides by the number of real examples.
  eval_step: Callable[[Any, dict, jax.Array], Metrics]
  # (state, key, n) -> float32 images (n, H, W, C) in [0, 1]; `n` is static. None for
  # methods that do not generate (a classifier): --mode=sample then stops with a clear error.
  sample: Optional[Callable[[Any, jax.Array, int], jax.Array]] = None
  # Like eval_step but for the final test evaluation written to results.json (e.g. IWAE with
  # k=5000). Defaults to eval_step.
  test_step: Optional[Callable[[Any, dict, jax.Array], Metrics]] = None
  # Host-side: (state, key, batch of numpy arrays) -> {name: image grid (H, W, C) float in
  # [0, 1]}. Written as samples/<name>_<step>.png and to TensorBoard at each eval.
  visualize: Optional[Callable[[Any, jax.Array, dict], dict[str, np.ndarray]]] = None
  # Host-side, at the final test evaluation (training's end and --mode=eval):
  # (state, key, arrays) -> (metrics, pictures). `arrays(role)` gives the whole split of role
  # 'train' | 'eval' | 'test' as numpy, {'image', 'label'} (data.split_arrays), for what is
  # not a sum over examples: AUROC, kNN accuracy on codes, SSIM, fitted classical baselines.
  # Metrics (floats) go into results.json; pictures (H, W, C) into WORKDIR/analysis/*.png.
  analyze: Optional[Callable[[Any, jax.Array, Callable[[str], dict]],
                             tuple[dict[str, float], dict[str, np.ndarray]]]] = None
  # For methods that map an input to an output but do not generate (autoencoders, CycleGAN):
  # (state, batch, key) -> {'input': what the network saw (e.g. the noisy image), 'output':
  # its reconstruction or translation}, float32 (B, H, W, C), and 'label', 'mask' where the
  # batch has no top-level ones (two domains). --mode=sample writes these for test images.
  reconstruct: Optional[Callable[[Any, dict, jax.Array], dict[str, jax.Array]]] = None
  # Host-side: the means of eval_step's sums -> the reported metrics, for what is not a mean
  # (a perplexity is exp of the mean NLL). eval_step may return its own '_count' (e.g. the
  # number of scored tokens), the denominator of every mean; it defaults to sum(mask).
  summarize: Optional[Callable[[dict[str, float]], dict[str, float]]] = None
  # Host-side, for methods that generate text (language models):
  # (state, key, num, **options) -> `num` strings; options are --mode=sample's --prompt,
  # --temperature, --length, --top_k, --top_p (None = the config's). visualize may then
  # return strings too: they are written as samples/<name>_<step>.txt and TensorBoard text.
  generate_text: Optional[Callable[..., list[str]]] = None
  # For methods whose state is the image(s) they optimise (style transfer, DeepDream, class
  # visualisation): state -> float32 (N, H, W, C) in [0, 1], the current images at full
  # resolution. The final evaluation writes them as WORKDIR/result.png (one image, or a grid
  # of N), and --mode=sample writes them, all N, as 'samples'.
  result: Optional[Callable[[Any], jax.Array]] = None
  # Host-side: step number -> a hashable label of what that step does (StyleGAN2: which lazy
  # regularisers run), passed to train_step as `phase=`. The trainer compiles one step per
  # label, so periodic work costs nothing at the other steps. (A lax.cond inside one step
  # would do the same, but XLA's CPU backend runs convolutions inside a conditional several
  # times slower.) None: one step for every step, called without `phase`.
  phase: Optional[Callable[[int], Any]] = None


def map_chunks(fn: Callable[[np.ndarray, int], Any], x: np.ndarray, chunk: int = 1000):
  """fn(x[i:i + chunk], i) for each chunk of a whole split, outputs concatenated on the host
  (tuples of arrays concatenated element-wise): for `analyze`, which sees splits whole."""
  parts = [jax.device_get(fn(x[i:i + chunk], i)) for i in range(0, len(x), chunk)]
  if isinstance(parts[0], tuple):
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(len(parts[0])))
  return np.concatenate(parts)


def section(config, name: str):
  """config.<name> (e.g. 'model', 'loss'), or an empty ConfigDict when the config has none."""
  return config.get(name) or ml_collections.ConfigDict()


def conditional_classes(config, data_info) -> int:
  """The number of classes a class-conditional model (config.model.conditional) is given,
  0 for an unconditional one; a UserError when the data set has no labels."""
  if not bool(section(config, 'model').get('conditional', False)):
    return 0
  if not data_info.num_classes:
    raise UserError(f"config.model.conditional=True needs class labels, but data set "
                    f"'{data_info.name}' has no 'label' feature: use a labelled data set "
                    '(mnist5k, mnist, cifar10) or set --config.model.conditional=False.')
  return data_info.num_classes


def sample_labels(n: int, num_classes: int) -> Optional[jax.Array]:
  """The classes of a conditional method's `sample(state, key, n)`: row i has class
  i % num_classes (what the CAS metric trains on); None when unconditional."""
  return jnp.arange(n, dtype=jnp.int32) % num_classes if num_classes else None


def available() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith('_'))


def get(name: str):
  """Returns the method module called `name`, or raises UserError listing those that exist."""
  if name not in available():
    raise UserError(
        f'Unknown method {name!r}: config.method must be one of {available()} '
        '(modules in genlab/methods/).')
  return importlib.import_module(f'{__name__}.{name}')


def check_config(config):
  """The checks that need no data, before anything is read or written: the method exists, each
  value is in its range, and the data set is of the kind the method trains on. Returns the
  method's module.

  The kinds (a method's DATA): 'images' (one image data set, the default), 'text', 'none'
  (config.dataset='none') and 'domains' (config.dataset='domains' with config.data.domains:
  several unpaired image sets, genlab/data/domains.py); a method takes only its own kind."""
  module = get(config.get('method', ''))
  config_checks.check(config, getattr(module, 'CONFIG_RANGES', None))
  from genlab import data as data_lib  # pylint: disable=g-import-not-at-top  (TFDS is heavy)
  wants = getattr(module, 'DATA', 'images')
  dataset = config.get('dataset', None)
  if isinstance(dataset, str) and dataset:
    has = ('none' if dataset == data_lib.NO_DATA else
           'domains' if dataset == data_lib.DOMAINS else
           'text' if data_lib.is_text_dataset(dataset) else 'images')
    if wants == 'domains' and has != 'domains':
      raise UserError(f'config.dataset={dataset!r} is one data set, but method '
                      f'{config.method!r} trains on several unpaired image domains: set '
                      f'--config.dataset={data_lib.DOMAINS} and config.data.domains (a dict of '
                      "domain name -> data config, e.g. {'a': {'dataset': 'digits'}, "
                      "'b': {'dataset': 'mnist5k'}}).")
    if has != wants:
      fix = {'text': 'a text data set (shakespeare, text:PATH)',
             'images': 'an image data set (mnist5k, digits, ...), or use a language-model '
                       'config such as configs/lstm_char_shakespeare.py',
             'none': f'--config.dataset={data_lib.NO_DATA} (it optimises images through a '
                     'fixed network; its inputs are config keys such as content and style)'
             }[wants]
      what = 'several image domains' if has == 'domains' else has
      raise UserError(f'config.dataset={dataset!r} is {what}, but method {config.method!r} '
                      f'trains on {wants}: give {fix}.')
  return module
