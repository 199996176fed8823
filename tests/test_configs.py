"""Every config states its recipe and takes every override; a tiny end-to-end run of every
config's :smoke variant through the real trainer.

Configs on TFDS catalogue data sets (`mnist`, `cifar10`, `celeb_a`), which cannot be had
offline, run under `tfds.testing.mock_data`, which replaces only the stored examples, so the
real opening, decoding, batching, training and evaluation code runs. Configs with sample
metrics train their smoke metric classifier once per session into a temporary directory.
"""
import glob
import importlib
import json
import os
import sys

from absl import flags
import ml_collections
import numpy as np
from ml_collections import config_flags
import pytest
import tensorflow_datasets as tfds

from conftest import ROOT
from genlab import config_defaults
from genlab import train
from genlab.data import builders
from genlab.data import source
from genlab.data import text_sources

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, 'configs', '*.py'))
                 if not os.path.basename(p).startswith('_'))


# The argument variants that the configs' docstrings and experiments/ run, beside the default.
VARIANTS = {'ae_anomaly_mnist': ['held_out=4'], 'ae_mnist': ['latent=2'],
            'ae_mnist_conv': ['latent=2'], 'sae_mnist': ['penalty=l1'],
            'dae_mnist': ['noise=masking,level=0.5', 'noise=salt_and_pepper,level=0.3'],
            'cyclegan_digits_mnist': ['semantic', 'noise'],
            'classifier_mnist': ['dataset=digits,image_size=28'],
            'stylegan2_folder': ['res=64']}
CASES = [(name, arg) for name in CONFIGS for arg in [None] + VARIANTS.get(name, [])]

# What a reader needs to find in a config file to know its experiment: the schedule, and every
# key a method reads for its networks, objective and optimization.
RECIPE_KEYS = ('method', 'dataset', 'batch_size', 'num_train_steps', 'ema_decay', 'ema_kimg',
               'ema_rampup')
RECIPE_SECTIONS = ('model', 'loss', 'noise', 'optimizer', 'g_optimizer', 'd_optimizer', 'train',
                   'augment', 'diffusion', 'sampler')
RECIPE_DATA = {'lm': ('tokenizer', 'vocab_size', 'lowercase', 'seq_len', 'tbptt'),
               'vae': ('binarize',)}
# Keys a config may leave to genlab/config_defaults.py: implementation choices, and the keys
# of the network kinds that its model.kind does not build.
NOT_RECIPE = {'model.dtype', 'model.conv_impl', 'model.d_conv_impl', 'model.unroll',
              'model.time_loop', 'model.conv_transpose_impl', 'model.modconv_impl'}
UNREAD_BY_KIND = {
    ('gan', 'dcgan'): {'model.g_hidden_dims', 'model.g_output_bias', 'model.g_init_range',
                       'model.d_hidden_dims', 'model.maxout_pieces', 'model.d_input_dropout',
                       'model.d_hidden_dropout', 'model.d_init_range'},
    ('gan', 'mlp'): {'model.features', 'model.d_norm'},
    ('autoencoder', 'mlp'): {'model.conv_features'}}
# The GANs' augment keys that their augment.kind does not read.
UNREAD_BY_AUGMENT = {
    'none': {'augment.policy', 'augment.ops', 'augment.p', 'augment.adaptive', 'augment.target',
             'augment.interval', 'augment.kimg'},
    'diffaugment': {'augment.ops', 'augment.p', 'augment.adaptive', 'augment.target',
                    'augment.interval', 'augment.kimg'},
    'ada': {'augment.policy'}}


def _get_config(name):
  return importlib.import_module(f'configs.{name}').get_config


def _leaves(c, prefix=''):
  """{dotted key: (value, field type)} of every leaf of a ConfigDict."""
  out = {}
  for key in c.keys():
    if isinstance(c[key], ml_collections.ConfigDict):
      out.update(_leaves(c[key], f'{prefix}{key}.'))
    else:
      out[prefix + key] = (c[key], c.get_type(key))
  return out


def _other(value, kind):
  """A value of the same field type that differs from `value`."""
  if isinstance(value, bool):
    return not value
  if isinstance(value, (int, float)):
    return value * 3 + (7 if isinstance(value, int) else 0.5)
  if isinstance(value, str):
    return value + '~'
  if isinstance(value, tuple):
    return value + (value[-1] if value else 1,)
  return {float: 0.5, int: 7}.get(kind, '~')  # None


def _poisoning(helper, depth):
  """`helper` with every value it returns changed (only the outermost of nested helper calls)."""
  def poisoned(*args, **kwargs):
    depth.append(helper)
    try:
      c = helper(*args, **kwargs)
    finally:
      depth.pop()
    if not depth:
      for key, (value, kind) in _leaves(c).items():
        section, _, field = key.rpartition('.')
        (c[section] if section else c)[field] = _other(value, kind)
    return c
  return poisoned


def _is_recipe(key, method):
  section, _, field = key.partition('.')
  return (key in RECIPE_KEYS or section in RECIPE_SECTIONS or
          (section == 'data' and field in RECIPE_DATA.get(method, ())))


def _taken_from_helpers(get_config, arg, monkeypatch):
  """The recipe keys of get_config(arg) whose value a genlab/config_defaults.py helper gives:
  those that change when every value the helpers return is changed."""
  plain = _leaves(get_config(arg))
  with monkeypatch.context() as m:
    depth = []
    for name in dir(config_defaults):
      if name.endswith('_config') and callable(getattr(config_defaults, name)):
        m.setattr(config_defaults, name, _poisoning(getattr(config_defaults, name), depth))
    poisoned = _leaves(get_config(arg))
  method, kind = plain['method'][0], plain.get('model.kind', (None,))[0]
  exempt = NOT_RECIPE | UNREAD_BY_KIND.get((method, kind), set())
  if method in ('gan', 'stylegan2'):
    exempt |= UNREAD_BY_AUGMENT[plain['augment.kind'][0]]
  if method == 'diffusion' and not plain['model.conditional'][0]:
    exempt |= {'diffusion.p_uncond'}  # the label dropout of classifier-free guidance
  return sorted(k for k, (v, _) in plain.items()
                if _is_recipe(k, method) and k not in exempt and poisoned.get(k, (None,))[0] != v)


@pytest.mark.parametrize('name,arg', CASES)
def test_config_file_states_its_recipe(name, arg, monkeypatch):
  """No network, loss, optimizer or schedule value comes from genlab/config_defaults.py."""
  assert _taken_from_helpers(_get_config(name), arg, monkeypatch) == [], (
      f'configs/{name}.py:{arg} takes these recipe values from genlab/config_defaults.py; '
      'state them in the config file')


def test_a_recipe_left_to_the_helpers_is_caught(monkeypatch):
  def get_config(arg=None):
    del arg
    c = config_defaults.gan_config()
    c.method, c.dataset = 'gan', 'mnist5k'
    config_defaults.set_schedule(c, 64, 5_000, log_every=100, eval_every=1_000,
                                 checkpoint_every=1_000)
    c.model.update(kind='dcgan', latent_dim=100, prior='normal', conditional=False, features=64,
                   d_norm='batch', spectral_norm=False)
    c.loss = dict(kind='non_saturating', n_critic=1, gp_weight=10.0)
    return c  # the optimizers, the EMA and the augmentation are the helper's
  taken = _taken_from_helpers(get_config, None, monkeypatch)
  assert taken == ['augment.kind', 'd_optimizer.learning_rate', 'd_optimizer.name', 'd_optimizer.schedule',
                   'ema_decay', 'g_optimizer.learning_rate', 'g_optimizer.name',
                   'g_optimizer.schedule']


@pytest.mark.parametrize('name,arg', CASES)
def test_config_has_every_key_of_its_method_with_its_type(name, arg):
  """A config that replaces a section whole keeps every key its method's helper has."""
  c = _get_config(name)(arg)
  helper = getattr(config_defaults, f'{c.method}_config', config_defaults.base_config)
  have = _leaves(c)
  for key, (_, kind) in _leaves(helper()).items():
    assert key in have, f'configs/{name}.py:{arg} has no {key} ({helper.__name__} has)'
    if kind is not type(None):
      assert have[key][1] is kind, f'configs/{name}.py: {key} is {have[key][1]}, not {kind}'


@pytest.mark.parametrize('name', CONFIGS)
def test_every_key_can_be_overridden_on_the_command_line(name, monkeypatch):
  """--config.KEY=VALUE of every key (the typed None ones too: data_dir, g_init_range ...)."""
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  want = {k: _other(v, kind) for k, (v, kind) in _leaves(_get_config(name)(None)).items()
          if kind is not type(None)}  # config_flags cannot type an untyped None
  argv = ['run.py', f'--config={path}'] + [
      f'--config.{k}={v!r}' if isinstance(v, tuple) else f'--config.{k}={v}'
      for k, v in want.items()]
  monkeypatch.setattr(sys, 'argv', argv)  # config_flags defines the override flags from it
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config', flag_values=fv, lock_config=True)
  fv(argv)
  got = _leaves(fv.config)
  assert {k: got[k][0] for k in want} == want


def test_every_config_is_listed_in_the_readme():
  readme = open(os.path.join(ROOT, 'README.md')).read()
  for name in CONFIGS:
    assert f'configs/{name}.py' in readme, f'configs/{name}.py has no row in README.md'


@pytest.fixture(scope='session')
def smoke_classifier_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('classifier') / 'classifier_mnist-smoke')


def _image_folders(root, splits=('trainA', 'trainB', 'testA', 'testB'), count=12) -> str:
  """A few random 20x20 RGB images in each split folder (by default the official CycleGAN
  layout)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for split in splits:
    os.makedirs(root / split, exist_ok=True)
    for i in range(count):
      Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
          root / split / f'{i}.png')
  return str(root)


# The natural-image StyleGAN2 smokes compile a 16-px program for minutes each; CI's time
# budget leaves them to python -m pytest -m slow (stylegan2_mnist's smoke stays in CI).
SLOW_SMOKES = ('stylegan2_celeba64', 'stylegan2_cifar10', 'stylegan2_folder')


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SMOKES
                                  else n for n in CONFIGS])
def test_config_smoke_trains_and_evaluates(name, data_dir, smoke_classifier_dir, tmp_path):
  config = importlib.import_module(f'configs.{name}').get_config('smoke')
  assert config.num_train_steps <= 100, 'the :smoke variant must stay tiny'
  workdir = str(tmp_path / name)
  if config.eval.sample_metrics or config.eval.test_sample_metrics:
    config.eval.classifier_workdir = smoke_classifier_dir
  offline = {**builders.OFFLINE_BUILDERS, **text_sources.TEXT_BUILDERS}
  domains = config.data.get('domains', None) or {}
  for domain in domains.values():  # a user's folder: a tiny one made here
    if domain.dataset.startswith('folder:'):
      domain.dataset = 'folder:' + _image_folders(tmp_path / 'folders')
  if config.dataset.startswith('folder:'):  # as many images as the smoke metrics draw
    splits = {config.data.train_split, config.data.eval_split, config.data.test_split}
    config.dataset = 'folder:' + _image_folders(tmp_path / 'folder', sorted(splits),
                                                config.eval.num_metric_samples)
  datasets = [d.dataset for d in domains.values()] or [config.dataset]
  if any(d.split('/')[0].split(':')[0] not in {*offline, 'folder'} for d in datasets):
    source.clear_cache()
    try:
      with tfds.testing.mock_data(num_examples=64):
        results = train.train_and_evaluate(config, workdir)
    finally:
      source.clear_cache()
  else:
    results = train.train_and_evaluate(config, workdir)
  assert results['step'] == config.num_train_steps
  assert all(v == v for v in results['metrics'].values())  # no NaN
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  losses = [r['loss'] for r in rows if r['split'] == 'train']
  if config.method != 'gan':  # a GAN's losses need not fall: see test_methods_gan's learning test
    assert losses[-1] < losses[0], f'{name}: the loss did not fall ({losses})'
  keys = {'fid': 'fid', 'classifier_score': 'classifier_score', 'coverage': 'coverage',
          'precision_recall': 'recall', 'parzen': 'parzen_ll', 'fid_vgg16': 'fid_vgg16',
          'kid_vgg16': 'kid_vgg16', 'cas': 'cas'}
  for metric in config.eval.test_sample_metrics:  # the sample metrics reached results.json
    assert keys[metric] in results['metrics'], metric
    assert keys[metric] in results['reference']['real_vs_real'], metric
  if config.method == 'classifier':
    return  # draws no samples
  if config.dataset == 'none':  # optimises images: the current ones at each eval, the result
    assert any(p.startswith('current_') for p in os.listdir(os.path.join(workdir, 'samples')))
    assert os.path.isfile(os.path.join(workdir, 'result.png'))
    return
  pngs = os.listdir(os.path.join(workdir, 'samples'))
  if config.method == 'lm':  # text samples at each temperature; n-gram baselines at the end
    assert {f'temperature_{t:g}_{config.num_train_steps:07d}.txt'
            for t in config.sample.temperatures} <= set(pngs)
    assert {'bits_per_token', 'perplexity', 'baseline/best/bits_per_token'} <= set(
        results['metrics'])
    return
  if config.method == 'cyclegan':  # translates: grids a -> b -> a, cycle errors at the end
    assert any(p.startswith('a_to_b_to_a_') for p in pngs)
    assert {'cycle_l1_a', 'cycle_l1_b'} <= set(results['metrics'])
    return
  if config.method == 'autoencoder':  # reconstructs rather than samples; analysis at the end
    assert any(p.startswith('reconstructions_') for p in pngs)
    assert 'recon_mse' in results['metrics']
    return
  assert any(p.startswith('samples_') for p in pngs)
  if config.model.get('latent_dim') == 2:
    assert any(p.startswith('manifold_') for p in pngs)
