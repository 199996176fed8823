"""Every numeric config value has a range, checked before a run writes anything."""
import fnmatch
import glob
import importlib
import math
import os

import pytest

from conftest import ROOT
from genlab import config_checks
from genlab import methods
from genlab.errors import UserError

CONFIGS = sorted(os.path.splitext(os.path.basename(p))[0]
                 for p in glob.glob(os.path.join(ROOT, 'configs', '*.py')))


def _config(name, arg='smoke'):
  return importlib.import_module(f'configs.{name}').get_config(arg)


def _rules(config):
  module = methods.get(config.method)
  return {**getattr(module, 'CONFIG_RANGES', {}), **config_checks.RULES}


def _set(config, key, value):
  node = config
  *path, last = key.split('.')
  for p in path:
    node = node[p]
  old = node[last]
  if isinstance(old, tuple):
    value = (value,) * max(1, len(old))
  with config.ignore_type():
    node[last] = value


@pytest.mark.parametrize('name', CONFIGS)
def test_every_numeric_key_has_a_rule_and_the_config_passes(name):
  for arg in (None, 'smoke'):
    config = _config(name, arg)
    rules = _rules(config)
    missing = [k for k in config_checks.numeric_keys(config)
               if config_checks.rule_for(k, rules) is None]
    assert not missing, f'{name}: no range for {missing} (add it to the method\'s CONFIG_RANGES)'
    methods.check_config(config)


def test_every_rule_matches_a_key_of_some_config():
  """A rule that matches no key is stale (a renamed key would then go unchecked)."""
  keys_by_method = {}
  for name in CONFIGS:
    config = _config(name)
    keys_by_method.setdefault(config.method, set()).update(config_checks.numeric_keys(config))
  def unused(patterns, keys):
    return [p for p in patterns if not any(fnmatch.fnmatchcase(k, p) for k in keys)]
  stale = unused(config_checks.RULES, set().union(*keys_by_method.values()))
  for method, keys in keys_by_method.items():
    stale += [f'{method}: {p}' for p in unused(
        getattr(methods.get(method), 'CONFIG_RANGES', {}), keys)]
  assert not stale, stale


def _bad_values(rule):
  """Values outside `rule`: below its low end, above its high end, not an integer, NaN."""
  out = [math.nan, math.inf]
  if rule.low is not None:
    out.append(rule.low if rule.low_open else rule.low - 1)
  if rule.high is not None:
    out.append(rule.high if rule.high_open else rule.high + 1)
  if rule.integer:
    out.append((rule.low or 0) + 1.5)
  return out


@pytest.mark.parametrize('name', ['vae_mnist', 'wgan_gp_mnist', 'ae_mnist', 'sae_mnist',
                                  'lstm_char_shakespeare', 'classifier_mnist'])
def test_each_out_of_range_value_is_refused_naming_its_key(name):
  config = _config(name)
  rules = _rules(config)
  tried = 0
  for key in config_checks.numeric_keys(config):
    rule = config_checks.rule_for(key, rules)
    for value in _bad_values(rule):
      bad = config.copy_and_resolve_references()
      _set(bad, key, value)
      with pytest.raises(UserError, match=f'config.{key}='):
        config_checks.check(bad, getattr(methods.get(config.method), 'CONFIG_RANGES', None))
      tried += 1
  assert tried >= 3 * len(config_checks.numeric_keys(config))


def test_negative_value_of_a_key_without_a_rule_is_refused():
  config = _config('vae_mnist')
  with config.unlocked():
    config.model.new_width = -3
  with pytest.raises(UserError, match=r'config.model.new_width=-3: give a number >= 0'):
    methods.check_config(config)


def test_text_data_for_an_image_method_and_back():
  config = _config('vae_mnist')
  config.dataset = 'text:/tmp/corpus.txt'
  with pytest.raises(UserError, match="is text, but method 'vae' trains on images"):
    methods.check_config(config)
  lm = _config('lstm_char_shakespeare')
  lm.dataset = 'mnist5k'
  with pytest.raises(UserError, match="is images, but method 'lm' trains on text"):
    methods.check_config(lm)


def test_unknown_divergence_policy():
  config = _config('vae_mnist')
  config.divergence.policy = 'retry'
  with pytest.raises(UserError, match="divergence.policy='retry' is not known"):
    methods.check_config(config)
