"""Drill: a damaged prepared data set under a training command: a truncated TFDS file, a record
whose PNG is corrupt, a record that is not an example, a dataset_info.json that is not JSON.

Each must stop the run before it writes anything (the workdir is not even made), with exit 2
and one line that names the damaged file and the fix (delete the folder: genlab prepares an
offline builder again).
"""
import os
import shutil

import pytest

import drill_lib as drills
from test_data_faults import broken_png, not_an_example, overwrite, rewrite_record, shard
from test_data_faults import truncate

VERSION = '1.0.0'
DAMAGE = {
    'truncated train shard': ('train', lambda p: truncate(p, 0.5)),
    'truncated test shard': ('test', lambda p: truncate(p, 0.5)),
    'corrupt PNG in a train record': ('train', lambda p: rewrite_record(p, broken_png)),
    'corrupt PNG in a test record': ('test', lambda p: rewrite_record(p, broken_png)),
    'a record that is not an example': ('validation',
                                        lambda p: rewrite_record(p, not_an_example)),
    'dataset_info.json not JSON': ('info', lambda p: overwrite(p, '{"name": ')),
}


def check(damage, data_dir, tmp_path) -> str:
  from genlab.data import source  # pylint: disable=g-import-not-at-top
  source.open_split('mnist5k', 'train', data_dir)  # prepared once per session
  root = str(tmp_path / 'tfds')
  shutil.copytree(os.path.join(data_dir, 'mnist5k'), os.path.join(root, 'mnist5k'))
  folder = os.path.join(root, 'mnist5k', VERSION)
  split, damage_fn = DAMAGE[damage]
  path = (os.path.join(folder, 'dataset_info.json') if split == 'info'
          else shard(folder, 'mnist5k', split))
  damage_fn(path)
  workdir = str(tmp_path / 'w')
  proc = drills.run('vae_mnist', workdir, {}, extra_env={'TFDS_DATA_DIR': root})
  errors = drills.error_lines(proc)
  assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-3000:]
  assert path in errors[0] and f'delete {folder} and re-run' in errors[0], errors[0]
  assert 'Traceback' not in proc.stderr
  assert not os.path.exists(workdir)
  return errors[0]


@pytest.mark.parametrize('damage', ['corrupt PNG in a train record'])
def test_damaged_data(damage, data_dir, tmp_path):
  check(damage, data_dir, tmp_path)
  drills.report(f'data: {damage}', 'one line naming the file and the fix; no workdir made')


@pytest.mark.slow
def test_every_damaged_data(data_dir, tmp_path):
  for i, damage in enumerate(DAMAGE):
    check(damage, data_dir, tmp_path / str(i))
  drills.report('damaged data (6 kinds)', f'{len(DAMAGE)}/{len(DAMAGE)} one line naming the '
                'file and the fix; no workdir made')
