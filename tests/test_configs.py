"""A tiny end-to-end run of every config's :smoke variant through the real trainer.

Configs on TFDS catalogue data sets (`mnist`, `cifar10`, `celeb_a`), which cannot be had
offline, run under `tfds.testing.mock_data`, which replaces only the stored examples, so the
real opening, decoding, batching, training and evaluation code runs. Configs with sample
metrics train their smoke metric classifier once per session into a temporary directory.
"""
import glob
import importlib
import json
import os

import pytest
import tensorflow_datasets as tfds

from conftest import ROOT
from genlab import train
from genlab.data import builders
from genlab.data import source
from genlab.data import text_sources

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, 'configs', '*.py'))
                 if not os.path.basename(p).startswith('_'))


def test_every_config_is_listed_in_the_readme():
  readme = open(os.path.join(ROOT, 'README.md')).read()
  for name in CONFIGS:
    assert f'configs/{name}.py' in readme, f'configs/{name}.py has no row in README.md'


@pytest.fixture(scope='session')
def smoke_classifier_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp('classifier') / 'classifier_mnist-smoke')


@pytest.mark.parametrize('name', CONFIGS)
def test_config_smoke_trains_and_evaluates(name, data_dir, smoke_classifier_dir, tmp_path):
  config = importlib.import_module(f'configs.{name}').get_config('smoke')
  assert config.num_train_steps <= 100, 'the :smoke variant must stay tiny'
  workdir = str(tmp_path / name)
  if config.eval.sample_metrics or config.eval.test_sample_metrics:
    config.eval.classifier_workdir = smoke_classifier_dir
  offline = {**builders.OFFLINE_BUILDERS, **text_sources.TEXT_BUILDERS}
  if config.dataset.split('/')[0].split(':')[0] not in offline:
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
          'precision_recall': 'recall', 'parzen': 'parzen_ll'}
  for metric in config.eval.test_sample_metrics:  # the sample metrics reached results.json
    assert keys[metric] in results['metrics'], metric
    assert keys[metric] in results['reference']['real_vs_real'], metric
  if config.method == 'classifier':
    return  # draws no samples
  pngs = os.listdir(os.path.join(workdir, 'samples'))
  if config.method == 'lm':  # text samples at each temperature; n-gram baselines at the end
    assert {f'temperature_{t:g}_{config.num_train_steps:07d}.txt'
            for t in config.sample.temperatures} <= set(pngs)
    assert {'bits_per_token', 'perplexity', 'baseline/best/bits_per_token'} <= set(
        results['metrics'])
    return
  if config.method == 'autoencoder':  # reconstructs rather than samples; analysis at the end
    assert any(p.startswith('reconstructions_') for p in pngs)
    assert 'recon_mse' in results['metrics']
    return
  assert any(p.startswith('samples_') for p in pngs)
  if config.model.get('latent_dim') == 2:
    assert any(p.startswith('manifold_') for p in pngs)
