"""StyleGAN2 latent editing (genlab/methods/stylegan2_edit.py, genlab/edit.py): SeFa and
GANSpace against numpy statements, edits that touch only their layers, style mixing and
truncation, projection's pieces against projector.py's formulas, a projection that falls in
LPIPS, bad input, and --mode=edit end to end on a one-step run."""
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import (ROOT, STYLEGAN2_CONFIG, STYLEGAN2_OVERRIDES, assert_one_line_error, fetched,
                      run_cli, stylegan2_config)
from genlab import edit
from genlab.errors import UserError
from genlab.methods import stylegan2
from genlab.methods import stylegan2_edit as E

CONFIG = os.path.join(ROOT, 'configs', 'stylegan2_mnist.py')
PROJECT_COUNT = 2  # the unit test and the CLI project as many images: one compiled step


@pytest.fixture(scope='module')
def nets():
  """The smoke generator (28x28x1 data, 32 px networks, 8 ws of 16) at its initialisation."""
  networks = stylegan2.networks(stylegan2_config(), (28, 28, 1))
  g_params = jax.jit(networks.generator.init)({'params': jax.random.key(0)},
                                              jnp.zeros((1, networks.z_dim)))['params']
  return networks, g_params


@pytest.fixture(scope='module')
def lpips_params():
  from genlab.metrics import lpips  # pylint: disable=g-import-not-at-top
  return fetched(lambda: lpips.load_params('vgg16'))


@pytest.fixture(scope='module')
def trained(stylegan2_run):
  """The workdir of the session's StyleGAN2 run (tests/conftest.py)."""
  return stylegan2_run[1]


# -- directions --------------------------------------------------------------------------------
# The synthesis layer that reads each ws index of a 32 px generator, written out by hand: the
# convs in order, and the top toRGB for the last index (genforce/sefa's choice).
SEFA_LAYERS_32 = [('b4', 'conv1'), ('b8', 'conv0'), ('b8', 'conv1'), ('b16', 'conv0'),
                  ('b16', 'conv1'), ('b32', 'conv0'), ('b32', 'conv1'), ('b32', 'torgb')]


def _naive_sefa(g_params, indices):
  """factorize_weight of genforce/sefa in numpy: style weights (out, w_dim) stacked, each
  style's row normalised, eigen-decomposition of A^T A sorted by eigenvalue."""
  rows = []
  for i in indices:
    block, layer = SEFA_LAYERS_32[i]
    kernel = np.asarray(g_params['synthesis'][block][layer]['affine']['kernel'], np.float64)
    rows.append(kernel.T / math.sqrt(kernel.shape[0]))  # equalized lr: 1 / sqrt(fan_in)
  a = np.concatenate(rows)
  a /= np.linalg.norm(a, axis=1, keepdims=True)
  values, vectors = np.linalg.eig(a.T @ a)
  order = np.argsort(values.real)[::-1]
  return values.real[order], vectors.real[:, order].T


@pytest.mark.parametrize('layers', [None, (0, 3), (5, 8)])
def test_sefa_is_the_eigenvectors_of_the_normalised_stacked_weights(nets, layers):
  networks, g_params = nets
  indices = range(8) if layers is None else range(*layers)
  directions, values = E.sefa_directions(g_params, networks, None if layers is None else indices)
  ref_values, ref_vectors = _naive_sefa(g_params, indices)
  assert directions.shape == (16, 16) and np.all(np.diff(values) <= 1e-9)
  np.testing.assert_allclose(values, ref_values, rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0, rtol=1e-9)
  # An eigenvector's sign is arbitrary; compare where eigenvalues are distinct (non-zero
  # ones, since with 3 layers A has fewer rows than w has dimensions).
  for k in range(16):
    if ref_values[k] > 1e-6:
      assert abs(directions[k] @ ref_vectors[k]) == pytest.approx(1.0, abs=1e-6)
  # trace(A^T A) = the number of (unit) rows: the styles of the chosen layers.
  styles = sum(np.asarray(g_params['synthesis'][b][l]['affine']['kernel']).shape[1]
               for b, l in (SEFA_LAYERS_32[i] for i in indices))
  assert values.sum() == pytest.approx(styles)


def test_style_affines_follow_the_ws_layout(nets):
  networks, g_params = nets
  layout = [(i, name) for i, name, _ in E.style_affines(g_params, networks)]
  assert layout == [(0, 'b4.conv1'), (1, 'b4.torgb'), (1, 'b8.conv0'), (2, 'b8.conv1'),
                    (3, 'b8.torgb'), (3, 'b16.conv0'), (4, 'b16.conv1'), (5, 'b16.torgb'),
                    (5, 'b32.conv0'), (6, 'b32.conv1'), (7, 'b32.torgb')]
  assert E.ws_resolutions(networks) == [4, 8, 8, 16, 16, 32, 32, 32]
  # Karras et al. 2019, Fig. 3: 4-8 coarse, 16-32 middle; a 32 px generator has no fine styles.
  assert E.style_mixing_ranges(networks) == {'coarse': (0, 3), 'middle': (3, 8)}


def test_ganspace_is_numpy_pca(nets):
  networks, g_params = nets
  key = jax.random.key(3)
  components, stds, mean = E.ganspace_directions(g_params, networks, key, 3000)
  w = E.sample_w(g_params, networks, key, 3000)
  assert w.shape == (3000, 16)
  np.testing.assert_allclose(mean, w.mean(axis=0), rtol=1e-10)
  _, s, vt = np.linalg.svd(w - w.mean(axis=0), full_matrices=False)
  np.testing.assert_allclose(stds, s / math.sqrt(len(w) - 1), rtol=1e-8)
  np.testing.assert_allclose(np.abs(np.sum(components * vt, axis=1)), 1.0, atol=1e-8)
  # The components' sigmas are their own standard deviations.
  np.testing.assert_allclose(E.direction_sigmas(w, components), stds, rtol=1e-8)


# -- edits -------------------------------------------------------------------------------------
def test_direction_moves_only_the_chosen_layers():
  rng = np.random.default_rng(0)
  ws = jnp.asarray(rng.normal(size=(3, 8, 16)), jnp.float32)
  d = rng.normal(size=16)
  d /= np.linalg.norm(d)
  out = np.asarray(E.apply_direction(ws, d, jnp.asarray([1.0, -2.0, 0.5]), (2, 5)))
  np.testing.assert_array_equal(out[:, :2], np.asarray(ws)[:, :2])
  np.testing.assert_array_equal(out[:, 5:], np.asarray(ws)[:, 5:])
  expected = np.asarray(ws)[:, 2:5] + np.asarray([1.0, -2.0, 0.5])[:, None, None] * d
  np.testing.assert_allclose(out[:, 2:5], expected, rtol=1e-6, atol=1e-6)
  strip = np.asarray(E.edit_strip_ws(ws, d, jnp.asarray([-1.0, 0.0, 3.0]), (0, 8)))
  assert strip.shape == (3, 3, 8, 16)
  np.testing.assert_array_equal(strip[:, 1], np.asarray(ws))  # strength 0: the original
  np.testing.assert_allclose(strip[1, 2] - np.asarray(ws)[1], np.broadcast_to(3 * d, (8, 16)),
                             atol=1e-5)


def test_style_mixing_and_truncation_grids():
  rows, cols = jnp.zeros((2, 8, 4)), jnp.ones((3, 8, 4))
  mixed = np.asarray(E.style_mix_ws(rows, cols, (0, 3)))
  assert mixed.shape == (2, 3, 8, 4)
  assert (mixed[:, :, :3] == 0).all() and (mixed[:, :, 3:] == 1).all()
  images = E.with_sources(np.zeros((2, 3, 5, 5, 1)), np.ones((2, 5, 5, 1)),
                          np.full((3, 5, 5, 1), 2.0))
  assert images.shape == (3, 4, 5, 5, 1)
  assert (images[0, 0] == 0.5).all() and (images[0, 1:] == 2).all() and (images[1:, 0] == 1).all()
  ws, w_avg = jnp.full((2, 8, 4), 3.0), jnp.ones(4)
  grid = np.asarray(E.truncation_ws(ws, w_avg, (1.0, 0.5, 0.0)))
  np.testing.assert_allclose(grid[:, 0, 0, 0], [3.0, 2.0, 1.0])
  with pytest.raises(UserError, match=r'outside \[0, 1\]'):
    E.truncation_ws(ws, w_avg, (1.5,))


def test_layer_sensitivity_sees_only_the_layers_an_image_reads(nets):
  ws = jax.random.normal(jax.random.key(0), (16, 8, 4))
  reads_layer_2 = lambda ws_MxNxW: np.asarray(ws_MxNxW)[:, 2, :, None, None]  # (M, W, 1, 1)
  out = E.layer_sensitivity(reads_layer_2, ws)
  expected = np.mean(np.std(np.asarray(ws[:, 2], np.float64), axis=0))
  np.testing.assert_allclose(out['per_layer'][2], expected, rtol=1e-6)
  assert out['per_layer'][:2] == [0.0, 0.0] and out['per_layer'][3:] == [0.0] * 5
  np.testing.assert_allclose(out['all'], expected, rtol=1e-6)
  networks, g_params = nets   # a generator at initialisation reads every layer's style
  render = jax.jit(lambda ws: networks.synthesize(g_params, ws, noise_mode='const'))
  real = E.layer_sensitivity(render, networks.map(g_params, jax.random.normal(
      jax.random.key(1), (8, networks.z_dim))))
  assert len(real['per_layer']) == networks.num_ws and min(real['per_layer']) > 1e-3


# -- projection --------------------------------------------------------------------------------
def _naive_noise_regularization(n_HxW):
  """projector.py's reg_loss for one noise buffer, in numpy."""
  total, n = 0.0, np.asarray(n_HxW, np.float64)
  while True:
    total += np.mean(n * np.roll(n, 1, axis=1)) ** 2 + np.mean(n * np.roll(n, 1, axis=0)) ** 2
    if n.shape[0] <= 8:
      return total
    n = n.reshape(n.shape[0] // 2, 2, n.shape[1] // 2, 2).mean(axis=(1, 3))


def test_noise_regularisation_and_normalisation_are_projectors():
  rng = np.random.default_rng(1)
  # Correlated maps, so that every scale contributes.
  noise = {f'b{s}': np.cumsum(rng.normal(size=(2, s, s, 1)), axis=2).astype(np.float32)
           for s in (4, 16, 32)}
  got = np.asarray(E.noise_regularization({k: jnp.asarray(v) for k, v in noise.items()}))
  expected = [sum(_naive_noise_regularization(v[b, ..., 0]) for v in noise.values())
              for b in range(2)]
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  unit = E.normalize_noise({k: jnp.asarray(v) for k, v in noise.items()})
  for v in unit.values():
    np.testing.assert_allclose(np.mean(np.asarray(v), axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.mean(np.asarray(v) ** 2, axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_schedules_are_projectors():
  """lr = 0.1 x cos ramp down over the last 25 % x linear ramp up over the first 5 %; w noise
  0.05 sigma_w (1 - t / 0.75)^2 until 75 %."""
  assert E.learning_rate(0, 1000) == 0.0
  assert E.learning_rate(25, 1000) == pytest.approx(0.05)
  assert E.learning_rate(500, 1000) == pytest.approx(0.1)
  assert E.learning_rate(875, 1000) == pytest.approx(0.05)
  assert E.learning_rate(999, 1000) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.004 * math.pi)))
  assert E.w_noise_scale(0, 100, 2.0) == pytest.approx(0.1)
  assert E.w_noise_scale(30, 100, 2.0) == pytest.approx(0.1 * (1 - 0.4) ** 2)
  assert E.w_noise_scale(75, 100, 2.0) == 0.0 and E.w_noise_scale(99, 100, 2.0) == 0.0


def test_lpips_view_sizes():
  assert E.lpips_view(jnp.zeros((1, 8, 8, 1))).shape == (1, 16, 16, 3)
  assert E.lpips_view(jnp.zeros((1, 28, 28, 3))).shape == (1, 28, 28, 3)
  assert E.lpips_view(jnp.zeros((1, 512, 512, 3))).shape == (1, 256, 256, 3)


@pytest.mark.slow  # ~1 min of projection compiles; CI's time budget
def test_projection_of_a_generated_image_falls_in_lpips(nets, lpips_params):
  networks, g_params = nets
  ws = networks.map(g_params, jax.random.normal(jax.random.key(5), (PROJECT_COUNT, 16)))
  targets = np.asarray(networks.to_data(networks.synthesize(g_params, ws, noise_mode='const')))
  result = E.project(networks, g_params, lpips_params, targets, jax.random.key(1),
                     num_steps=30, w_samples=1024)
  assert result['ws'].shape == (PROJECT_COUNT, 8, 16) and result['images'].shape == targets.shape
  assert (result['ws'] == result['ws'][:, :1]).all()  # W: one w for every layer
  assert np.all(result['lpips'] < 0.8 * result['initial_lpips']), result
  losses = result['losses']
  assert losses.shape == (30, PROJECT_COUNT) and np.all(losses[-5:].mean(0) < losses[:5].mean(0))
  assert np.all(np.isfinite(result['psnr'])) and np.all(result['mse'] < 0.25)
  for name, (h, w) in networks.generator.noise_shapes().items():
    n = result['noise'][name]
    assert n.shape == (PROJECT_COUNT, h, w, 1)
    np.testing.assert_allclose(n.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)


def test_projection_refuses_bad_targets(nets, tmp_path):
  networks, g_params = nets
  with pytest.raises(UserError, match=r'\(N, 28, 28, 1\)'):
    E.project(networks, g_params, None, np.zeros((1, 32, 32, 1)), jax.random.key(0))
  with pytest.raises(UserError, match='w\\+'):
    E.project(networks, g_params, None, np.zeros((1, 28, 28, 1)), jax.random.key(0), space='z')
  path = str(tmp_path / 'big.png')
  Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(path)
  with pytest.raises(UserError, match='--project_resize'):
    edit.read_target(path, (28, 28, 1), resize=False)
  image = edit.read_target(path, (28, 28, 1), resize=True)  # RGB -> grey, resized
  assert image.shape == (1, 28, 28, 1) and image.dtype == np.float32
  np.testing.assert_allclose(image, 200 / 255, atol=1 / 255)
  with pytest.raises(UserError, match='no such file'):
    edit.read_target(str(tmp_path / 'missing.png'), (28, 28, 1), resize=False)


def test_bad_ranges_and_indices_are_refused(nets):
  networks, _ = nets
  assert E.parse_layers(None, 8) == (0, 8) and E.parse_layers('2:', 8) == (2, 8)
  assert E.parse_layers(':3', 8) == (0, 3)
  for text in ('5:3', '0:9', '-1:4', '4:4'):
    with pytest.raises(UserError, match=r'inside \[0, 8\)'):
      E.parse_layers(text, 8)
  with pytest.raises(UserError, match='START:STOP'):
    E.parse_layers('a:b', 8)
  with pytest.raises(UserError, match=r'in \[0, 16\)'):
    E.check_direction(16, 16)
  with pytest.raises(UserError, match=r'inside \[0, 8\)'):
    E.sefa_directions(nets[1], networks, range(6, 10))
  for options, words in ((edit.Options(psis=(1.0, -0.1)), 'outside [0, 1]'),
                         (edit.Options(method='pca'), 'sefa'),
                         (edit.Options(project='x.png', project_count=2), 'give one'),
                         (edit.Options(strengths=(float('nan'),)), 'finite')):
    with pytest.raises(UserError) as info:
      options.check()
    assert words in str(info.value)


# -- --mode=edit -------------------------------------------------------------------------------
def _cli_overrides():
  return [f'--config.{k}={v}' for k, v in STYLEGAN2_OVERRIDES.items()]


def test_edit_refuses_indices_and_layers_of_the_checkpoint(trained):
  config = stylegan2_config()
  with pytest.raises(UserError, match='--edit_index 16 is out of range'):
    edit.edit(config, trained, edit.Options(index=16, project_count=0))
  with pytest.raises(UserError, match='--edit_layers 0:9'):
    edit.edit(config, trained, edit.Options(layers='0:9', project_count=0))
  with pytest.raises(UserError, match='at most 16'):
    edit.edit(config, trained, edit.Options(num_directions=17, project_count=0))
  assert not os.path.exists(os.path.join(trained, 'edit'))


@pytest.mark.slow  # ~1 min of projection compiles; CI's time budget
def test_edit_mode_end_to_end(trained, lpips_params):
  del lpips_params  # fetched into the session's cache, which the command line reads
  proc = run_cli('--config', STYLEGAN2_CONFIG, '--workdir', trained, *_cli_overrides(),
                 '--mode=edit', '--edit_method=ganspace', '--edit_directions=2',
                 '--edit_seeds=2', '--edit_samples=1024', '--edit_strengths=-2,0,2',
                 '--edit_layers=0:4', '--edit_psis=1,0.5,0', '--edit_index=1',
                 f'--project_count={PROJECT_COUNT}', '--project_steps=4', check=True)
  out = os.path.join(trained, 'edit')
  assert f'wrote {out}' in proc.stdout
  record = json.load(open(os.path.join(out, 'edit.json')))
  assert sorted(os.listdir(out)) == sorted(record['files'])
  assert record['method'] == 'ganspace' and record['layers'] == [0, 4]
  assert len(record['explained_variance']) == 16 and len(record['sigmas']) == 16
  assert sum(record['explained_variance_ratio']) == pytest.approx(1.0)
  assert len(record['layer_sensitivity']['per_layer']) == record['num_ws']
  projection = record['projection']
  assert projection['steps'] == 4 and projection['edit_index'] == 1
  assert len(projection['lpips']) == PROJECT_COUNT and np.isfinite(projection['mean_psnr'])
  # 28 px cells scaled x2, 1 px padding: strips 2 rows x 3 strengths, the mixing grids with
  # their sources (3 x 3 cells), truncation 3 psis x 2 seeds, projection 2 x (2 + 3).
  sizes = {'ganspace_direction_01.png': (2, 3), 'style_mixing_coarse.png': (3, 3),
           'style_mixing_middle.png': (3, 3), 'truncation.png': (3, 2),
           'projection.png': (2, 5)}
  for name, (rows, cols) in sizes.items():
    with Image.open(os.path.join(out, name)) as image:
      assert image.size == (cols * 56 + (cols - 1) * 2, rows * 56 + (rows - 1) * 2), name
  with np.load(os.path.join(out, 'projection.npz')) as f:
    assert f['ws'].shape == (PROJECT_COUNT, 8, 16) and f['targets'].shape == (2, 28, 28, 1)


@pytest.mark.parametrize('args, words', [
    (['--mode=edit', '--edit_psis=1,1.5'], ('--edit_psis', 'outside [0, 1]')),
    (['--mode=sample', '--edit_index=2'], ('--edit_index', '--mode=edit')),
])
def test_bad_flags_are_one_line(args, words, tmp_path):
  proc = run_cli('--config', CONFIG + ':smoke', '--workdir', str(tmp_path / 'w'), *args)
  assert_one_line_error(proc, *words)
  assert not os.path.exists(tmp_path / 'w')


def test_a_method_other_than_stylegan2_is_refused(tmp_path):
  proc = run_cli('--config', os.path.join(ROOT, 'configs', 'gan_mnist.py') + ':smoke',
                 '--workdir', str(tmp_path / 'w'), '--mode=edit')
  assert_one_line_error(proc, 'stylegan2', "'gan'")
  assert not os.path.exists(tmp_path / 'w')
