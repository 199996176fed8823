"""Tests for genlab/methods/deepdream.py: the objective rises, octaves reinject the detail,
tiling gives the untiled objective and gradient, bad input, and exact resume with result.png,
the per-octave gains and --mode=sample."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import fetched, resume_matches
from configs import deepdream as config_file
from genlab import train
from genlab.data import photos
from genlab.errors import UserError
from genlab.methods import _image_optim
from genlab.methods import deepdream as dd
from genlab.pretrained import efficientnet
from genlab.pretrained import vgg


def _config(**overrides):
  c = config_file.get_config('smoke')
  c.layers = ('relu2_2',)       # shallow: quick to compile
  c.update(overrides)
  return c


@pytest.fixture(scope='module', autouse=True)
def _weights():
  fetched(vgg.load_vgg16)


def _steps(config, n):
  run = train._Run(config, None)
  state = run.init_state()
  for _ in range(n):
    state, _ = run.train_step(state, {})
  return run, state


def _bases(config, sizes):
  photo = photos.load(config.image, max_side=config.image_size)
  return [np.asarray(_image_optim.resize(jnp.asarray(photo)[None], hw)) for hw in sizes]


def test_octaves_are_stride_multiples_and_grow_reinjects_the_detail():
  config = _config(num_train_steps=4)           # 2 octaves of 2 steps
  run, state = _steps(config, 2)                 # step 2 ends octave 0 and starts octave 1
  coarse, fine = state.images
  assert dd._dream(config).step == 2                        # relu2_2's stride
  for x in (coarse, fine):
    assert x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0
  assert fine.shape[1] > coarse.shape[1] and max(fine.shape[1:3]) == 48
  base0, base1 = _bases(config, [coarse.shape[1:3], fine.shape[1:3]])
  detail = np.asarray(coarse) - base0
  assert np.abs(detail).mean() > 1e-3           # octave 0 dreamt something
  want = np.clip(base1 + np.asarray(_image_optim.resize(jnp.asarray(detail), fine.shape[1:3])),
                 0, 1)
  np.testing.assert_allclose(fine, want, atol=1e-6)
  assert not np.allclose(fine, base1, atol=1e-3)  # the detail is there, not a fresh photo


def test_objective_rises_in_every_octave():
  config = _config(num_train_steps=6, jitter=0)
  run, state = _steps(config, 6)
  metrics, pictures = run.method.analyze(state, None, None)
  for k in range(2):
    assert metrics[f'gain_octave_{k}'] > 1.2, metrics
    assert metrics[f'gain_octave_{k}'] == pytest.approx(
        metrics[f'objective_end_octave_{k}'] / metrics[f'objective_start_octave_{k}'])
  # Octave 1 starts from its photo plus octave 0's detail: above the plain photo's objective.
  base = _bases(config, [state.images[1].shape[1:3]])[0]
  plain = float(jax.jit(lambda x: dd._dream(config).value(x)[0])(base))
  assert metrics['objective_start_octave_1'] > plain
  h, w = state.images[1].shape[1:3]
  assert pictures['octaves'].shape == (h, 2 * w + 1, 3)     # both octaves at full size
  ev = run.eval_step(state, {}, 0)
  assert float(ev['objective']) == pytest.approx(metrics['objective_end_octave_1'], rel=1e-5)


def test_mean_kind_ascends_the_mean_activation():
  config = _config(num_train_steps=3, jitter=2, loss=dict(kind='mean'),
                   octaves=dict(num=1, scale=1.4))
  run = train._Run(config, None)
  state = run.init_state()
  before = float(run.eval_step(state, {}, 0)['objective'])
  for _ in range(3):
    state, _ = run.train_step(state, {})
  assert float(run.eval_step(state, {}, 0)['objective']) > before


def test_axis_windows_partition_the_side_and_stay_inside():
  for length, tile, halo in [(100, 40, 8), (96, 64, 20), (33, 40, 8), (200, 24, 4)]:
    windows = dd.axis_windows(length, tile, halo)
    owned = [(a, b) for _, a, b in windows]
    assert owned[0][0] == 0 and owned[-1][1] == length
    assert all(b0 == a1 for (_, a1), (b0, _) in zip(owned, owned[1:]))   # a partition
    for start, a, b in windows:
      span = min(tile, length)
      assert 0 <= start and start + span <= length
      assert a >= (start + halo if start > 0 else 0)                     # halo before
      assert b <= (start + span - halo if start + span < length else length)  # and after


@pytest.mark.parametrize('network,layers,size,tile', [
    ('vgg16', ('relu3_3',), (88, 72), 64),
    ('vgg16', ('relu2_2', 'relu3_1'), (96, 64), 48),
    ('efficientnet_lite0', ('block3',), (96, 64), 64),
])
def test_tiled_objective_and_gradient_are_the_untiled_ones(network, layers, size, tile):
  """Windows widened by the receptive radius and cut on the stride grid: F and dF/dx are
  those of the whole image (module docstring); without the halo they are not (and for VGG,
  whose bound is tight, nor with a halo one stride short)."""
  if network == 'efficientnet_lite0':
    fetched(efficientnet.load_params)
  config = ml_collections.ConfigDict(dict(network=dict(name=network), layers=layers,
                                          tile_size=tile, loss=dict(kind='mean_square')))
  dream = dd._dream(config)
  assert size[0] % dream.step == 0 and size[1] % dream.step == 0
  assert len(dd.axis_windows(size[0], tile, dream.halo)) > 1
  x = jax.random.uniform(jax.random.key(0), (1, *size, 3))

  def value_and_grad(d, tile):
    return jax.jit(jax.value_and_grad(lambda x: d.value(x, tile=tile)[0]))(x)

  v0, g0 = value_and_grad(dream, False)
  v1, g1 = value_and_grad(dream, True)
  scale = float(jnp.max(jnp.abs(g0)))
  assert float(v1) == pytest.approx(float(v0), rel=1e-5)
  np.testing.assert_allclose(g1, g0, atol=1e-5 * scale)

  for short in ([0, dream.halo - dream.step] if network == 'vgg16' else [0]):
    class ShortHalo(dd.Dream):
      halo = short
    fields = {f: getattr(dream, f) for f in dream.__dataclass_fields__}
    _, g2 = value_and_grad(ShortHalo(**fields), True)
    assert float(jnp.max(jnp.abs(g2 - g0))) > 1e-3 * scale, short


def test_an_octave_larger_than_the_tile_is_tiled_in_training():
  config = _config(num_train_steps=2, jitter=0, tile_size=28, layers=('relu1_2',),
                   octaves=dict(num=1, scale=1.4))   # 48 px image, windows of 28
  run, state = _steps(config, 2)
  dream = dd._dream(config)
  assert dream.tiled(state.images[0].shape[1:3])
  whole = float(jax.jit(lambda x: dream.value(x, tile=False)[0])(state.images[0]))
  assert float(run.eval_step(state, {}, 0)['objective']) == pytest.approx(whole, rel=1e-5)


@pytest.mark.parametrize('network,bad,listed', [
    ('vgg16', 'relu9_9', 'relu4_3'), ('efficientnet_lite0', 'block99', 'block16')])
def test_unknown_layer_is_the_networks_error_listing_the_valid_ones(network, bad, listed):
  if network == 'efficientnet_lite0':
    fetched(efficientnet.load_params)
  with pytest.raises(UserError, match=bad) as e:
    train._Run(_config(network=dict(name=network, pooling='max'), layers=(bad,)), None)
  assert listed in str(e.value)


@pytest.mark.parametrize('overrides,words', [
    (dict(optimizer=dict(name='lbfgs', learning_rate=None), jitter=4), 'jitter'),
    (dict(tile_size=8), 'tile_size >= 14'),   # relu2_2: halo 6 on each side, stride 2
    (dict(layer_weights=(1.0, 2.0)), 'one per layer'),
    (dict(loss=dict(kind='max')), 'loss.kind'),
    (dict(network=dict(name='googlenet', pooling='max')), 'network.name'),
    (dict(layers=()), 'config.layers is empty'),
])
def test_bad_input_is_one_clear_error(overrides, words):
  with pytest.raises(UserError, match=words):
    train._Run(_config(**overrides), None)


def test_lbfgs_without_jitter_is_allowed_and_ascends():
  config = _config(num_train_steps=4, jitter=0,
                   optimizer=dict(name='lbfgs', memory_size=5, learning_rate=None))
  run = train._Run(config, None)
  state = run.init_state()
  losses = []
  for _ in range(2):
    state, metrics = run.train_step(state, {})
    losses.append(float(metrics['loss']))
  assert losses[1] < losses[0]


def test_run_writes_result_and_gains_and_resumes_bit_identically(tmp_path):
  config = _config(num_train_steps=4)
  config.checkpoint_every_steps = config.eval_every_steps = 2
  straight = str(tmp_path / 'straight')
  results = train.train_and_evaluate(config, straight)
  for k in range(2):
    assert results['metrics'][f'gain_octave_{k}'] > 1
  assert os.path.isfile(os.path.join(straight, 'analysis', 'octaves.png'))
  # The same run stopped after step 2 (its last checkpoint and record removed), then resumed.
  assert resume_matches(config, straight, tmp_path, 4, 1).shape == (1, 32, 48, 3)
