"""Drill: damaged checkpoints in a finished run (steps 10 and 20, results.json of step 20).

Each damage is applied to a copy, then the two commands a researcher would run:
- `--mode=eval` falls back to the newest usable step and writes its numbers to
  evals/step_N/ (results.json untouched, nothing moved), or refuses in one line when no step is
  usable (the workdir byte-identical);
- the training command again: it sets the unusable step aside (checkpoints_corrupt/), trains
  it again, and its results.json equals the original; or refuses, changing nothing.
results.json never regresses to an older step's numbers. All slow: test_train.py holds CI's
smaller cases (a corrupt newest step, a half-written one, all corrupt, eval into evals/).
"""
import glob
import json
import os
import shutil

import pytest

import drill_lib as drills

NAME = 'vae_mnist'
RUN = {}  # the smoke schedule: 20 steps, checkpoints at 10 and 20


def _state_files(step_dir):
  return [p for p in glob.glob(os.path.join(step_dir, 'state', '**', '*'), recursive=True)
          if os.path.isfile(p) and '/d/' in p]  # TensorStore's data files


def truncate_an_array_file(workdir):
  path = max(_state_files(os.path.join(workdir, 'checkpoints', '20')), key=os.path.getsize)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def remove_the_commit_marker(workdir):
  os.remove(os.path.join(workdir, 'checkpoints', '20', 'commit_success.txt'))


def metadata_not_json(workdir):
  with open(os.path.join(workdir, 'checkpoints', '20', 'state', '_METADATA'), 'w') as f:
    f.write('{"tree_metadata": ')


def another_configs_step(workdir, foreign):
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '20'))
  shutil.copytree(os.path.join(foreign, 'checkpoints', '20'),
                  os.path.join(workdir, 'checkpoints', '20'))


def every_step_truncated(workdir):
  truncate_an_array_file(workdir)
  for path in _state_files(os.path.join(workdir, 'checkpoints', '10')):
    with open(path, 'r+b') as f:
      f.truncate(0)


DAMAGE = {
    'truncated array file': truncate_an_array_file,
    'missing commit marker': remove_the_commit_marker,
    'metadata not JSON': metadata_not_json,
    "another config's step": another_configs_step,
    'every step truncated': every_step_truncated,
}


@pytest.fixture(scope='module')
def runs(data_dir, tmp_path_factory):
  """A finished run, and one of another config (other shapes) to take a step from."""
  root = tmp_path_factory.mktemp('runs')
  for name, overrides in (('finished', RUN), ('foreign', {'model.latent_dim': 3})):
    done = drills.run(NAME, str(root / name), overrides)
    assert done.returncode == 0, done.stderr[-3000:]
  return str(root / 'finished'), str(root / 'foreign')


def damaged_copy(runs, damage, tmp_path) -> str:
  finished, foreign = runs
  workdir = str(tmp_path / 'w')
  shutil.copytree(finished, workdir)
  if damage == "another config's step":
    DAMAGE[damage](workdir, foreign)
  else:
    DAMAGE[damage](workdir)
  return workdir


def check(damage, runs, tmp_path) -> str:
  workdir = damaged_copy(runs, damage, tmp_path)
  record = open(os.path.join(workdir, 'results.json')).read()
  before = drills.checksums(workdir)
  evaluated = drills.run(NAME, workdir, RUN, '--mode=eval')
  if damage == 'every step truncated':
    assert evaluated.returncode == 2 and len(drills.error_lines(evaluated)) == 1
    assert 'No usable checkpoint' in drills.error_lines(evaluated)[0]
    assert drills.checksums(workdir) == before
    trained = drills.run(NAME, workdir, RUN)
    assert trained.returncode == 2 and 'No usable checkpoint' in trained.stderr
    assert drills.checksums(workdir) == before
    return 'both refused in one line, the workdir byte-identical'
  assert evaluated.returncode == 0, evaluated.stderr[-3000:]
  assert 'checkpoint step 20' in evaluated.stderr and 'unusable' in evaluated.stderr
  assert open(os.path.join(workdir, 'results.json')).read() == record
  assert os.path.exists(os.path.join(workdir, 'evals', 'step_0000010', 'results.json'))
  assert not os.path.exists(os.path.join(workdir, 'checkpoints_corrupt'))
  trained = drills.run(NAME, workdir, RUN)
  assert trained.returncode == 0, trained.stderr[-3000:]
  aside = os.listdir(os.path.join(workdir, 'checkpoints_corrupt'))
  assert [a.split('-')[0] for a in aside] == ['20']
  assert json.loads(open(os.path.join(workdir, 'results.json')).read())['metrics'] == \
      json.loads(record)['metrics']
  return ('eval fell back to step 10 (evals/, results.json untouched); training set step 20 '
          'aside and made it again, results.json equal')


@pytest.mark.slow
@pytest.mark.parametrize('damage', list(DAMAGE))
def test_damaged_checkpoint(damage, runs, tmp_path):
  drills.report(f'checkpoint: {damage}', check(damage, runs, tmp_path))
