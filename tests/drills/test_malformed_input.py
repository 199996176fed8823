"""Drill: malformed configs, overrides and flags, each given to a workdir that holds a finished
run. Every one must stop with exit 2 and one `genlab: error:` line that names what is wrong (no
traceback), and leave the workdir byte-identical (sha256 of every file before and after).

CI runs `CI_CASES`, a few kinds; `-m slow` runs all of them.
"""
import os
import shutil

import pytest

import drill_lib as drills
from conftest import ROOT, run_cli

VAE = os.path.join(ROOT, 'configs', 'vae_mnist.py') + ':smoke'
LSTM = os.path.join(ROOT, 'configs', 'lstm_char_shakespeare.py') + ':smoke'

# name: (arguments after --workdir W, words the error line must hold). The config is the VAE's
# smoke config unless the arguments start with --config.
CASES = {
    # keys that do not exist
    'unknown key': (['--config.no_such_key=1'], ["no key 'no_such_key'"]),
    'misspelt nested key': (['--config.optimizer.learnin_rate=1e-3'],
                            ['did you mean optimizer.learning_rate']),
    'misspelt section': (['--config.optimiser.learning_rate=1e-3'], ['optimizer.learning_rate']),
    'key under a value': (['--config.batch_size.x=1'], ['batch_size']),
    # values of the wrong type
    'word for an integer': (['--config.batch_size=many'], ['batch_size']),
    'fraction for an integer': (['--config.num_train_steps=1.5'], ['num_train_steps']),
    'word for a float': (['--config.optimizer.learning_rate=fast'], ['learning_rate']),
    'word for a tuple': (['--config.model.hidden_dims=wide'], ['hidden_dims']),
    # numbers out of range
    'batch size 0': (['--config.batch_size=0'], ['config.batch_size=0: give an integer >= 1']),
    'negative batch size': (['--config.batch_size=-16'], ['batch_size=-16']),
    'no steps': (['--config.num_train_steps=0'], ['num_train_steps=0']),
    'negative steps': (['--config.num_train_steps=-5'], ['num_train_steps=-5']),
    'eval every 0 steps': (['--config.eval_every_steps=0'], ['eval_every_steps=0']),
    'log every 0 steps': (['--config.log_every_steps=0'], ['log_every_steps=0']),
    'checkpoint every 0 steps': (['--config.checkpoint_every_steps=0'],
                                 ['checkpoint_every_steps=0']),
    'keep no checkpoints': (['--config.max_checkpoints_to_keep=0'], ['max_checkpoints_to_keep']),
    'negative learning rate': (['--config.optimizer.learning_rate=-1e-3'],
                               ['learning_rate=-0.001', 'does not descend']),
    'zero learning rate': (['--config.optimizer.learning_rate=0'], ['learning_rate=0']),
    'NaN learning rate': (['--config.optimizer.learning_rate=nan'], ['learning_rate=nan']),
    'infinite learning rate': (['--config.optimizer.learning_rate=inf'], ['learning_rate=inf']),
    'Adam b1 = 1': (['--config.optimizer.b1=1.0'], ['optimizer.b1=1.0']),
    'Adam b2 > 1': (['--config.optimizer.b2=1.5'], ['optimizer.b2=1.5']),
    'Adam eps = 0': (['--config.optimizer.eps=0'], ['optimizer.eps=0']),
    'no latent dimensions': (['--config.model.latent_dim=0'], ['latent_dim=0']),
    'a hidden layer of width 0': (['--config.model.hidden_dims=(32,0)'], ['hidden_dims']),
    'eval batch 0': (['--config.eval.batch_size=0'], ['eval.batch_size=0']),
    'no importance samples': (['--config.eval.num_importance_samples=0'],
                              ['num_importance_samples=0']),
    'negative rollbacks': (['--config.divergence.max_rollbacks=-1'], ['max_rollbacks=-1']),
    'negative fault step': (['--config.debug.nan_at_step=-1'], ['nan_at_step=-1']),
    # names that do not exist
    'unknown method': (['--config.method=vea'], ["Unknown method 'vea'", "'vae'"]),
    'no method': (['--config.method='], ['Unknown method']),
    'unknown data set': (['--config.dataset=no_such_data'], ['no_such_data', 'mnist5k']),
    'catalogue data set not prepared': (['--config.dataset=mnist'], ['mnist', 'mnist5k']),
    'text data for an image model': (['--config.dataset=text:/etc'], ['trains on images']),
    'unknown binarization': (['--config.data.binarize=sometimes'], ['binarize']),
    'unknown network': (['--config.model.kind=transformer'], ['transformer']),
    'unknown optimizer': (['--config.optimizer.name=adamw2'], ['adamw2']),
    'unknown schedule': (['--config.optimizer.schedule=triangle'], ['triangle']),
    'unknown divergence policy': (['--config.divergence.policy=retry'], ["policy='retry'"]),
    'unknown sample metric': (['--config.eval.sample_metrics=(fidd,)'], ['fidd']),
    # the workdir's run
    'changed shapes': (['--config.model.latent_dim=3'], ['model.latent_dim', 'new --workdir']),
    'fewer steps than done': (['--config.num_train_steps=10'], ['beyond config.num_train_steps']),
    # the config file and its argument
    'no --config': (['!no-config'], ['Give an experiment: --config']),
    'missing config file': (['!config', 'configs/no_such_config.py'], ['No such file']),
    'unknown config argument': (['!config', 'configs/vae_mnist.py:smok'],
                                ["Unknown config argument 'smok'"]),
    # flags
    'unknown mode': (['--mode=bogus'], ['--mode']),
    'unknown flag': (['--no_such_flag=1'], ['no_such_flag']),
    'word for --num_samples': (['--mode=sample', '--num_samples=many'], ['num_samples']),
    'sample output in a missing folder': (['--mode=sample', '--output=/no/such/folder/s.npz'],
                                          ['does not exist']),
    'sample output not .npz': (['--mode=sample', '--output=OUT/samples.txt'], ['.npz']),
    'text prompt for an image model': (['--mode=sample', '--prompt=To be'], ['--prompt']),
    'sweep with eval mode': (['--sweep', '--mode=eval'], ['--sweep trains every trial']),
    # the other modality
    'image data for a language model': (['!config', LSTM, '--config.dataset=mnist5k',
                                         '--config.baseline.orders=()'], ['trains on text']),
    'zero temperature': (['!config', LSTM, '--mode=sample', '--temperature=0'],
                         ['temperature']),
}
# A few kinds, for CI (test_config_checks and the method tests hold the unit-level checks).
CI_CASES = ['unknown key', 'word for an integer', 'negative learning rate', 'unknown data set',
            'changed shapes', 'fewer steps than done', 'missing config file']


@pytest.fixture(scope='module')
def finished(data_dir, tmp_path_factory):
  """A workdir holding a finished smoke run of the VAE (and the LM's, for the LM cases)."""
  root = tmp_path_factory.mktemp('finished')
  run_cli('--config', VAE, '--workdir', str(root / 'vae'), check=True)
  run_cli('--config', LSTM, '--workdir', str(root / 'lm'), '--config.baseline.orders=()',
          check=True)
  return root


def _arguments(args, workdir, out):
  """The command line of a case: '!config X' gives the --config, '!no-config' gives none."""
  config = [] if args[:1] == ['!no-config'] else ['--config', VAE]
  if args[:1] == ['!config']:
    config, args = ['--config', args[1]], args[2:]
  elif args[:1] == ['!no-config']:
    args = args[1:]
  return [*config, '--workdir', workdir, *(a.replace('OUT', out) for a in args)]


def check_case(name, finished, tmp_path):
  args, words = CASES[name]
  which = 'lm' if LSTM in args else 'vae'
  workdir = str(tmp_path / 'w')
  shutil.copytree(finished / which, workdir)
  before = drills.checksums(workdir)
  proc = run_cli(*_arguments(args, workdir, str(tmp_path)))
  errors = drills.error_lines(proc)
  assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
  for word in words:
    assert word in errors[0], errors[0]
  assert 'Traceback' not in proc.stderr
  assert drills.checksums(workdir) == before
  return errors[0]


@pytest.mark.parametrize('name', CI_CASES)
def test_malformed_input(name, finished, tmp_path):
  check_case(name, finished, tmp_path)


@pytest.mark.slow
def test_every_malformed_input(finished, tmp_path):
  failed = {}
  for i, name in enumerate(CASES):
    try:
      check_case(name, finished, tmp_path / str(i))
    except AssertionError as e:
      failed[name] = str(e).splitlines()[0][:300]
  drills.report('malformed configs, overrides and flags',
                f'{len(CASES) - len(failed)}/{len(CASES)} stopped with exit 2 and one line, the '
                'workdir byte-identical')
  assert not failed, failed

