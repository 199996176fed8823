"""Tests for several unpaired image sets in one run (genlab.data.domains), the `folder:PATH`
image source, channel conversion, and the import graph of the genlab.data package.

The offline builders are prepared once per module into a temporary data dir; the TFDS
catalogue's cycle_gan/horse2zebra runs under tfds.testing.mock_data.
"""
import ast
import glob
import os
import types

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from genlab import data
from genlab import methods
from genlab.data import pipeline, source
from genlab.errors import UserError

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        'genlab', 'data')
LAYOUT = 'trainA/ trainB/ testA/ testB/'


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds_data'))
  for name in ('mnist5k', 'digits'):
    tfds.builder(name, data_dir=path).download_and_prepare()
  return path


@pytest.fixture(autouse=True)
def fresh_cache():
  data.clear_cache()
  yield
  data.clear_cache()


def domain(dataset, **keys):
  d = dict(dataset=dataset, data_dir=None, center_crop=None, image_size=None, channels=None,
           train_split=None, eval_split=None, test_split=None)
  d.update(keys)
  return d


def make_config(data_dir, batch_size=16, **domain_configs):
  domain_configs = domain_configs or dict(a=domain('digits', image_size=28),
                                          b=domain('mnist5k'))
  return ml_collections.ConfigDict(dict(
      dataset='domains', data_dir=data_dir, seed=0, batch_size=batch_size,
      data=dict(train_split='train', eval_split='validation', test_split='test',
                binarize='none', domains=domain_configs)))


def one_line(e):
  return '\n' not in str(e.value)


# --- the package's import graph ------------------------------------------------------------


def _data_imports(tree):
  """(module imported, inside a function?) for each genlab.data module `tree` imports."""
  found = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                ast.Lambda))
      if isinstance(child, ast.ImportFrom) and child.module:
        if child.module == 'genlab.data':
          found.extend((a.name, inner) for a in child.names)
        elif child.module.startswith('genlab.data.'):
          found.append((child.module.split('.')[2], inner))
      elif isinstance(child, ast.Import):
        found.extend((a.name.split('.')[2], inner) for a in child.names
                     if a.name.startswith('genlab.data.'))
      visit(child, inner)

  visit(tree, False)
  return found


def test_data_package_imports_are_top_level_and_acyclic():
  modules = {os.path.splitext(os.path.basename(p))[0]: p
             for p in glob.glob(os.path.join(DATA_DIR, '*.py'))}
  graph = {}
  for name, path in modules.items():
    with open(path) as f:
      imports = _data_imports(ast.parse(f.read(), path))
    inside = [m for m, in_function in imports if in_function]
    assert not inside, f'genlab/data/{name}.py imports {inside} inside a function'
    graph[name] = {m for m, _ in imports if m in modules and m != name}
  assert graph['source'] == {'builders', 'folders'}
  assert 'pipeline' not in set().union(*(graph[m] for m in graph if m != '__init__'))
  # Depth-first search for a cycle.
  state = {}

  def visit(node, path):
    state[node] = 'open'
    for nxt in graph[node]:
      assert state.get(nxt) != 'open', f"import cycle: {' -> '.join(path + [nxt])}"
      if nxt not in state:
        visit(nxt, path + [nxt])
    state[node] = 'done'

  for node in graph:
    if node not in state:
      visit(node, [node])


# --- digits + mnist5k ----------------------------------------------------------------------


def test_info_names_both_domains_with_their_shapes(tfds_dir):
  info = data.get_info(make_config(tfds_dir))
  assert pipeline.kind(make_config(tfds_dir)) == 'domains'
  assert data.is_domains(make_config(tfds_dir)) and data.DOMAINS == 'domains'
  assert info.name == 'digits+mnist5k' and info.image_shape == (28, 28, 1)
  assert info.num_classes == 10 and info.num_examples == {'train': 4000, 'eval': 500, 'test': 500}
  assert set(info.domains) == {'a', 'b'}
  assert info.domains['a'].name == 'digits' and info.domains['a'].image_shape == (28, 28, 1)
  assert info.domains['a'].num_examples == {'train': 1259, 'eval': 179, 'test': 359}
  assert info.domains['b'] == data.get_info(ml_collections.ConfigDict(dict(
      dataset='mnist5k', data_dir=tfds_dir, data=dict(binarize='none'))))
  stored = data.get_info(make_config(tfds_dir, a=domain('digits'), b=domain('mnist5k')))
  assert stored.domains['a'].image_shape == (8, 8, 1) and stored.image_shape == (8, 8, 1)


def test_train_batches_shapes_labels_range_and_determinism(tfds_dir):
  config = make_config(tfds_dir)
  it = data.train_iterator(config)
  batch = next(it)
  assert set(batch) == {'a', 'b'}
  for d in ('a', 'b'):
    assert set(batch[d]) == {'image', 'label'}
    assert batch[d]['image'].shape == (16, 28, 28, 1) and batch[d]['image'].dtype == np.float32
    assert 0.0 <= batch[d]['image'].min() and batch[d]['image'].max() <= 1.0
    assert batch[d]['image'].max() > 0.9
    assert batch[d]['label'].dtype == np.int32 and batch[d]['label'].shape == (16,)
    assert 0 <= batch[d]['label'].min() and batch[d]['label'].max() <= 9
  # The same step is the same batch, from a fresh iterator too; other steps differ.
  again = data.train_iterator(config).dataset[0]
  for d in ('a', 'b'):
    np.testing.assert_array_equal(again[d]['image'], batch[d]['image'])
  assert not np.array_equal(it.dataset[1]['a']['image'], batch['a']['image'])
  # Domain a is the image pipeline's stream of digits at 28x28, with its own seed.
  whole = data.split_arrays(config, 'train')['a']
  assert any(np.array_equal(batch['a']['image'][0], x) for x in whole['image'])


def test_two_domains_of_one_data_set_are_not_aligned(tfds_dir):
  config = make_config(tfds_dir, a=domain('mnist5k'), b=domain('mnist5k'))
  batches = data.train_iterator(config).dataset
  for step in range(3):
    assert not np.array_equal(batches[step]['a']['image'], batches[step]['b']['image'])
    assert not np.array_equal(batches[step]['a']['label'], batches[step]['b']['label'])


def test_set_state_resumes_exactly(tfds_dir):
  config = make_config(tfds_dir, batch_size=512)  # Crosses digits' epoch boundary at step 2.
  it = data.train_iterator(config)
  straight = [next(it) for _ in range(5)]
  resumed = data.train_iterator(config)
  resumed.set_state({'step': 3})
  assert resumed.get_state() == {'step': 3}
  for want in straight[3:]:
    got = next(resumed)
    for d in ('a', 'b'):
      for k in ('image', 'label'):
        np.testing.assert_array_equal(got[d][k], want[d][k])
  assert it.get_state() == {'step': 5}


def test_processes_share_the_global_batch(tfds_dir):
  config = make_config(tfds_dir)
  whole = data.train_iterator(config).dataset[2]
  parts = [data.train_iterator(config, process_index=p, process_count=4).dataset[2]
           for p in range(4)]
  for d in ('a', 'b'):
    for k in ('image', 'label'):
      np.testing.assert_array_equal(np.concatenate([p[d][k] for p in parts]), whole[d][k])
  with pytest.raises(UserError, match='not divisible by the 3'):
    data.train_iterator(config, process_count=3)


def test_eval_pass_is_as_long_as_the_longest_split_with_masks(tfds_dir):
  config = make_config(tfds_dir)
  batches = list(data.eval_batches(config, 'validation', 100))
  assert len(batches) == 5  # mnist5k's 500 validation digits; digits has 179.
  arrays = data.split_arrays(config, 'eval')
  for name, n in (('a', 179), ('b', 500)):
    mask = np.concatenate([b[name]['mask'] for b in batches])
    np.testing.assert_array_equal(mask, np.arange(500) < n)
    image = np.concatenate([b[name]['image'] for b in batches])
    np.testing.assert_array_equal(image[:n], arrays[name]['image'])
    assert not image[n:].any()
    label = np.concatenate([b[name]['label'] for b in batches])
    np.testing.assert_array_equal(label[:n], arrays[name]['label'])
  assert all(b['mask'].dtype == np.float32 and b['mask'].sum() == 100 for b in batches)
  # 2 processes: each takes half of each global batch, the same number of batches.
  halves = [list(data.eval_batches(config, 'validation', 100, process_index=p, process_count=2))
            for p in range(2)]
  assert [len(h) for h in halves] == [5, 5]
  for i, b in enumerate(batches):
    for name in ('a', 'b'):
      for k in ('image', 'label', 'mask'):
        np.testing.assert_array_equal(
            np.concatenate([halves[0][i][name][k], halves[1][i][name][k]]), b[name][k])
  # 384 digits but 400 mnist5k at batch 128: the top-level mask ends where b's split ends.
  last = list(data.eval_batches(config, 'test', 128))
  assert len(last) == 4 and last[-1]['mask'].sum() == 500 - 3 * 128
  assert last[-1]['a']['mask'].sum() == 0 and last[2]['a']['mask'].sum() == 359 - 2 * 128


def test_each_domain_reads_its_own_split_for_the_role(tfds_dir):
  config = make_config(tfds_dir, a=domain('digits', eval_split='test', image_size=28),
                       b=domain('mnist5k', eval_split='train[:50]'))
  info = data.get_info(config)
  assert info.domains['a'].num_examples['eval'] == 359
  assert info.domains['b'].num_examples['eval'] == 50
  batches = list(data.eval_batches(config, 'validation', 100))  # The top-level eval name.
  assert len(batches) == 4 and sum(b['b']['mask'].sum() for b in batches) == 50
  with pytest.raises(UserError, match='none of config.data.train_split') as e:
    list(data.eval_batches(config, 'bogus', 100))
  assert one_line(e)
  config.data.test_split = 'validation'  # eval and test share a name but not their splits
  with pytest.raises(UserError, match='different names'):
    list(data.eval_batches(config, 'validation', 100))


# --- channels --------------------------------------------------------------------------------


def test_channels_repeat_gray_and_take_the_luminance_of_rgb(tfds_dir):
  config = make_config(tfds_dir, a=domain('mnist5k', channels=3), b=domain('mnist5k'))
  info = data.get_info(config)
  assert info.domains['a'].image_shape == (28, 28, 3)
  assert info.domains['b'].image_shape == (28, 28, 1)
  arrays = data.split_arrays(config, 'test')
  np.testing.assert_array_equal(arrays['a']['image'],
                                np.repeat(arrays['b']['image'], 3, axis=-1))
  rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
  gray = source.convert_channels(rgb, 1)
  assert gray.shape == (1, 4, 1) and gray.dtype == np.uint8
  np.testing.assert_array_equal(gray[0, :, 0], [76, 150, 29, 18])  # 0.299/0.587/0.114, rounded
  np.testing.assert_array_equal(source.convert_channels(gray, 3)[0, 3], [18, 18, 18])
  assert source.convert_channels(rgb, None) is rgb
  with pytest.raises(UserError, match='must be 1 .gray., 3 .RGB. or None') as e:
    data.get_info(make_config(tfds_dir, a=domain('mnist5k', channels=2)))
  assert 'config.data.domains.a.channels=2' in str(e.value) and one_line(e)


# --- folder:PATH -------------------------------------------------------------------------------


def write_png(path, array):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path)


def rgb_folder(root, sizes=None, n=(5, 3)):
  """root/trainA/ and root/testA/ with n RGB images each, all 12x10 unless `sizes` says."""
  rng = np.random.default_rng(0)
  for split, count in zip(('trainA', 'testA'), n):
    for i in range(count):
      h, w = (sizes or {}).get((split, i), (12, 10))
      write_png(os.path.join(root, split, f'{i:03d}.png'),
                rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
  return str(root)


def test_folder_as_a_domain_and_as_the_data_set(tfds_dir, tmp_path):
  root = rgb_folder(tmp_path / 'h2z')
  write_png(str(tmp_path / 'h2z' / 'trainB' / 'x.png'), np.full((12, 10), 200, np.uint8))
  config = make_config(tfds_dir, a=domain(f'folder:{root}', train_split='trainA',
                                          eval_split='testA', test_split='testA'),
                       b=domain('mnist5k', image_size=12))
  info = data.get_info(config)
  assert info.domains['a'] == data.DataInfo(f'folder:{root}', (12, 10, 3), 1,
                                            {'train': 5, 'eval': 3, 'test': 3})
  batch = next(data.train_iterator(config))
  assert batch['a']['image'].shape == (16, 12, 10, 3) and not batch['a']['label'].any()
  assert batch['b']['image'].shape == (16, 12, 12, 1)
  files = sorted(glob.glob(os.path.join(root, 'testA', '*.png')))
  want = np.stack([np.asarray(Image.open(f)) for f in files]).astype(np.float32) / 255
  np.testing.assert_allclose(data.split_arrays(config, 'test')['a']['image'], want)
  # As config.dataset of the one-image-set pipeline, resized and converted to gray.
  single = ml_collections.ConfigDict(dict(
      dataset=f'folder:{root}', seed=0, batch_size=4, data=dict(
          train_split='trainA', eval_split='testA', test_split='testA', binarize='none',
          image_size=8, channels=1)))
  assert data.get_info(single) == data.DataInfo(f'folder:{root}', (8, 8, 1), 1,
                                                {'train': 5, 'eval': 3, 'test': 3})
  assert next(data.train_iterator(single))['image'].shape == (4, 8, 8, 1)
  assert [b['mask'].sum() for b in data.eval_batches(single, 'testA', 4)] == [3]
  small = [source.convert_channels(source.crop_and_resize(np.asarray(Image.open(f)), None, 8), 1)
           for f in files]
  np.testing.assert_allclose(data.split_arrays(single, 'eval')['image'],
                             np.stack(small).astype(np.float32) / 255)


def folder_error(tmp_path, root, split='trainA', **keys):
  config = make_config(str(tmp_path), a=domain(f'folder:{root}', train_split=split, **keys),
                       b=domain(f'folder:{root}', train_split=split, **keys))
  with pytest.raises(UserError) as e:
    next(data.train_iterator(config))
  assert one_line(e)
  return str(e.value)


def test_folder_errors_say_what_to_do(tmp_path):
  missing = str(tmp_path / 'nowhere')
  assert 'does not exist' in folder_error(tmp_path, missing) and missing in folder_error(
      tmp_path, missing)
  root = rgb_folder(tmp_path / 'ok')
  message = folder_error(tmp_path, root, split='trainB')
  assert "no subfolder 'trainB'" in message and LAYOUT in message and 'testA, trainA' in message
  os.makedirs(tmp_path / 'ok' / 'empty')
  assert 'holds no image files' in folder_error(tmp_path, root, split='empty')
  bad = tmp_path / 'bad'
  rgb_folder(bad)
  with open(bad / 'trainA' / '002.png', 'wb') as f:
    f.write(b'not a png')
  message = folder_error(tmp_path, str(bad))
  assert str(bad / 'trainA' / '002.png') in message and 'not an image' in message
  sizes = tmp_path / 'sizes'
  rgb_folder(sizes, sizes={('trainA', 3): (20, 16)})
  message = folder_error(tmp_path, str(sizes))
  assert 'different sizes' in message and 'image_size' in message and '003.png' in message
  config = make_config(str(tmp_path), a=domain(f'folder:{sizes}', image_size=8),
                       b=domain(f'folder:{sizes}', center_crop=10, image_size=6))
  config.data.train_split = 'trainA'  # Each domain's None split is the top-level one.
  batch = next(data.train_iterator(config))
  assert batch['a']['image'].shape == (16, 8, 8, 3) and batch['b']['image'].shape == (16, 6, 6, 3)
  mixed = tmp_path / 'mixed'
  rgb_folder(mixed)
  write_png(str(mixed / 'trainA' / '009.png'), np.zeros((12, 10), np.uint8))
  message = folder_error(tmp_path, str(mixed))
  assert 'mixes gray and RGB' in message and 'channels' in message and '009.png' in message
  batch = next(data.train_iterator(make_config(
      str(tmp_path), a=domain(f'folder:{mixed}', train_split='trainA', channels=3),
      b=domain(f'folder:{mixed}', train_split='trainA', channels=1))))
  assert batch['a']['image'].shape[-1] == 3 and batch['b']['image'].shape[-1] == 1


# --- the TFDS catalogue's cycle_gan under mock_data ------------------------------------------


def test_cycle_gan_horse2zebra_under_mock_data(tmp_path):
  name = 'cycle_gan/horse2zebra'
  config = make_config(
      str(tmp_path), batch_size=8,
      a=domain(name, image_size=32, train_split='trainA', eval_split='testA', test_split='testA'),
      b=domain(name, image_size=32, train_split='trainB', eval_split='testB', test_split='testB'))
  with tfds.testing.mock_data(num_examples=12):
    info = data.get_info(config)
    batches = [next(it) for it in [data.train_iterator(config)] for _ in range(3)]
    evals = list(data.eval_batches(config, 'validation', 8))
  assert info.name == f'{name}+{name}' and info.image_shape == (32, 32, 3)
  assert info.num_classes == 2 and info.num_examples == {'train': 12, 'eval': 12, 'test': 12}
  for batch in batches:
    for d in ('a', 'b'):
      assert batch[d]['image'].shape == (8, 32, 32, 3) and batch[d]['image'].std() > 0.05
      assert 0.0 <= batch[d]['image'].min() and batch[d]['image'].max() <= 1.0
  assert [b['mask'].sum() for b in evals] == [8, 4]
  assert [b['a']['mask'].sum() for b in evals] == [8, 4]


# --- what domains mode refuses ---------------------------------------------------------------


@pytest.mark.parametrize('change,words', [
    (lambda c: setattr(c.data, 'binarize', 'dynamic'), 'binarize=none'),
    (lambda c: setattr(c.data, 'held_out_labels', (3,)), 'held_out_labels is not supported'),
    (lambda c: setattr(c.data, 'domains', {}), 'needs config.data.domains'),
    (lambda c: c.data.domains.a.update(dict(image_sise=28)), 'domains.a.image_sise is not'),
    (lambda c: setattr(c.data.domains.b, 'dataset', None), 'domains.b has no dataset'),
    (lambda c: setattr(c.data.domains.b, 'dataset', 'shakespeare'), 'not an image data set'),
    (lambda c: setattr(c.data.domains.b, 'dataset', 'domains'), 'not an image data set'),
])
def test_domains_mode_refuses_with_one_line(tfds_dir, change, words):
  config = make_config(tfds_dir)
  with config.unlocked():
    change(config)
  for call in (data.get_info, data.train_iterator, lambda c: data.split_arrays(c, 'train')):
    with pytest.raises(UserError, match=words) as e:
      call(config)
    assert one_line(e)


def test_check_config_matches_domains_methods_and_data(monkeypatch):
  module = types.SimpleNamespace(DATA='domains')
  monkeypatch.setattr(methods, 'get', lambda name: module)
  config = ml_collections.ConfigDict(dict(method='pairs', dataset='domains'))
  assert methods.check_config(config) is module
  config.dataset = 'mnist5k'
  with pytest.raises(UserError, match='set --config.dataset=domains and config.data.domains'):
    methods.check_config(config)
  module.DATA = 'images'
  config.dataset = 'domains'
  with pytest.raises(UserError, match="is several image domains, but method 'pairs' trains on "
                                      'images'):
    methods.check_config(config)
  config.dataset = 'folder:/data/horse2zebra'
  assert methods.check_config(config) is module
