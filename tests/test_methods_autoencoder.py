"""Autoencoders: corruption, losses and penalties against their equations, learning on digits,
the analysis against classical baselines, --mode=sample, and bad input through the CLI."""
import glob
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from configs import ae_anomaly_mnist, ae_mnist, dae_mnist, sae_mnist, vae_mnist
from genlab import sampling
from genlab import train
from genlab.methods import autoencoder as ae



# -- corruption, losses and penalties ---------------------------------------------------------
def test_masking_and_salt_and_pepper_hit_the_given_fraction():
  x = jnp.full((64, 28, 28, 1), 0.5)
  key = jax.random.key(0)
  masked = np.asarray(ae.corrupt(key, x, 'masking', 0.3))
  assert set(np.unique(masked)) == {0.0, 0.5}
  assert abs(np.mean(masked == 0.0) - 0.3) < 0.01
  sp = np.asarray(ae.corrupt(key, x, 'salt_and_pepper', 0.3))
  assert set(np.unique(sp)) == {0.0, 0.5, 1.0}
  assert abs(np.mean(sp != 0.5) - 0.3) < 0.01
  assert abs(np.mean(sp == 1.0) - 0.15) < 0.01  # salt and pepper at even odds
  other = np.asarray(ae.corrupt(jax.random.key(1), x, 'masking', 0.3))
  assert not np.array_equal(masked, other)  # fresh noise for a fresh key


def test_gaussian_noise_has_the_given_sigma_and_stays_in_range():
  x = jnp.full((64, 28, 28, 1), 0.5)
  noisy = np.asarray(ae.corrupt(jax.random.key(0), x, 'gaussian', 0.1))
  assert abs(np.std(noisy - 0.5) - 0.1) < 0.002  # 5 sigma from the edges: no clipping
  clipped = np.asarray(ae.corrupt(jax.random.key(0), x, 'gaussian', 2.0))
  assert clipped.min() == 0.0 and clipped.max() == 1.0
  np.testing.assert_array_equal(ae.corrupt(jax.random.key(0), x, 'none', 0.5), x)


def test_reconstruction_losses_match_their_equations():
  rng = np.random.default_rng(0)
  x = rng.random((3, 4, 4, 1)).astype(np.float32)
  logits = rng.normal(size=x.shape).astype(np.float32)
  p = 1 / (1 + np.exp(-logits))
  ce = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
  np.testing.assert_allclose(ae.reconstruction_loss('cross_entropy', logits, x), ce, rtol=1e-5)
  np.testing.assert_allclose(ae.reconstruction_loss('mse', logits, x),
                             0.5 * np.sum((p - x) ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_kl_sparsity_matches_ng_and_is_zero_at_the_target():
  code = jnp.array([[0.2, 0.1], [0.0, 0.3]])  # unit means 0.1 and 0.2
  rho = 0.1
  expected = rho * np.log(rho / 0.2) + (1 - rho) * np.log((1 - rho) / 0.8)  # unit 1; unit 0 is 0
  np.testing.assert_allclose(ae.kl_sparsity(code, rho), expected, rtol=1e-5)
  np.testing.assert_allclose(ae.sparsity_penalty('kl', code, 3.0, rho), 3 * expected, rtol=1e-5)
  np.testing.assert_allclose(ae.sparsity_penalty('l1', -code, 0.5, rho), 0.5 * 0.3, rtol=1e-6)
  assert float(ae.sparsity_penalty('none', code, 3.0, rho)) == 0.0


def test_psnr_of_a_known_error():
  x = jnp.zeros((2, 4, 4, 1))
  np.testing.assert_allclose(ae.psnr(x + 0.1, x), [20.0, 20.0], rtol=1e-5)


# -- learning, through the trainer ------------------------------------------------------------
def _train(module, arg, workdir, **overrides):
  config = module.get_config(arg)
  with config.unlocked():
    for key, value in overrides.items():
      target = config
      *path, last = key.split('.')
      for p in path:
        target = target[p]
      target[last] = value
  return config, train.train_and_evaluate(config, workdir)


@pytest.fixture(scope='module')
def bottleneck_run(data_dir, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('ae') / 'ae2')
  config, results = _train(ae_mnist, 'smoke,latent=2', workdir, num_train_steps=300,
                           **{'model.hidden_dims': (64,), 'batch_size': 64})
  return config, workdir, results


def test_bottleneck_autoencoder_reports_pca_and_knn_and_plots_codes(bottleneck_run):
  _, workdir, results = bottleneck_run
  m = results['metrics']
  for key in ('recon_mse', 'baseline/pca/recon_mse', 'knn/code', 'baseline/knn/pca',
              'baseline/knn/pixels'):
    assert key in m, key
  assert m['knn/code'] > 0.3  # 2-D codes separate digits far above chance (0.1)
  assert m['recon_mse'] < 0.1  # it learned to reconstruct (an untrained one gives ~0.2)
  for name in ('codes_2d', 'pca_2d'):
    assert os.path.getsize(os.path.join(workdir, 'analysis', f'{name}.png')) > 1000
  events = b''.join(open(p, 'rb').read() for p in glob.glob(
      os.path.join(workdir, 'tensorboard', 'events.out.tfevents.*')))
  assert b'analysis/codes_2d' in events and b'samples/reconstructions' in events


def test_eval_mode_repeats_the_analysis_exactly(bottleneck_run):
  config, workdir, results = bottleneck_run
  assert train.evaluate(config, workdir)['metrics'] == results['metrics']


def test_sample_mode_writes_reconstructions_and_says_so(bottleneck_run, tmp_path):
  _, workdir, _ = bottleneck_run
  out = tmp_path / 'r.npz'
  proc = run_cli('--config', 'configs/ae_mnist.py:smoke,latent=2', '--workdir', workdir,
                 '--config.num_train_steps=300', '--config.model.hidden_dims=(64,)',
                 '--config.batch_size=64', '--mode=sample', '--num_samples=10',
                 '--output', str(out), check=True)
  assert 'does not generate samples' in proc.stderr and 'reconstructions' in proc.stderr
  f = np.load(out)
  assert str(f['kind']) == 'reconstructions'
  assert f['samples'].shape == f['clean'].shape == f['inputs'].shape == (10, 28, 28, 1)
  np.testing.assert_array_equal(f['inputs'], f['clean'])  # no noise: the input is the image
  assert 0 <= f['samples'].min() and f['samples'].max() <= 1
  assert os.path.exists(tmp_path / 'r.png')


def test_denoising_autoencoder_beats_its_noisy_input(data_dir, tmp_path):
  config, results = _train(dae_mnist, 'smoke,noise=salt_and_pepper,level=0.3',
                           str(tmp_path / 'dae'), num_train_steps=300,
                           **{'model.hidden_dims': (64,), 'model.latent_dim': 32,
                              'eval.denoisers': ('median_filter',)})
  m = results['metrics']
  assert m['denoise/psnr'] > m['baseline/noisy/psnr'] + 3  # dB
  assert m['psnr'] > m['noisy_psnr'] + 3  # the per-eval numbers agree
  assert 'baseline/median_filter/psnr' in m and 'baseline/median_filter/ssim' in m
  assert os.path.exists(tmp_path / 'dae' / 'analysis' / 'denoising.png')
  # --mode=sample gives the noisy inputs and their denoised versions.
  path = sampling.sample(config, str(tmp_path / 'dae'), 4, str(tmp_path / 'd.npz'))
  f = np.load(path)
  assert np.mean(f['inputs'] != f['clean']) > 0.1  # a hit on a black pixel may stay black
  assert np.mean((f['samples'] - f['clean']) ** 2) < np.mean((f['inputs'] - f['clean']) ** 2)


@pytest.mark.parametrize('penalty', ['kl', 'l1'])
def test_sparse_autoencoder_pulls_activations_down(penalty, data_dir, tmp_path):
  """The penalty brings the mean activation near rho (KL) or far below the unpenalised one."""
  steps = dict(num_train_steps=500, batch_size=64,
               **{'model.latent_dim': 64, 'optimizer.learning_rate': 5e-3})
  _, free = _train(sae_mnist, f'smoke,penalty={penalty}', str(tmp_path / 'free'),
                   **steps, **{'loss.sparsity_weight': 0.0})
  _, sparse = _train(sae_mnist, f'smoke,penalty={penalty}', str(tmp_path / 'sparse'), **steps)
  free_mean = free['metrics']['sparsity/mean_activation']
  mean = sparse['metrics']['sparsity/mean_activation']
  assert mean < 0.75 * free_mean, (mean, free_mean)
  if penalty == 'kl':
    assert abs(mean - 0.1) < 0.05, mean
  assert 0 <= sparse['metrics']['sparsity/silent_fraction'] <= 1
  assert os.path.exists(tmp_path / 'sparse' / 'analysis' / 'features.png')


def test_anomaly_detection_scores_the_held_out_class(data_dir, tmp_path):
  _, results = _train(ae_anomaly_mnist, 'smoke,held_out=1', str(tmp_path / 'an'),
                      num_train_steps=200)
  m = results['metrics']
  assert 0.0 <= m['anomaly/auroc_recon'] <= 1.0
  assert 0.0 <= m['baseline/pca/anomaly_auroc'] <= 1.0
  assert abs(m['anomaly/fraction_anomalous'] - 0.11) < 0.03  # the 1s of the test split


def test_vae_scores_anomalies_by_the_negative_elbo(data_dir, tmp_path):
  config, results = _train(vae_mnist, 'smoke', str(tmp_path / 'vae'), num_train_steps=200,
                           **{'data.held_out_labels': (1,)})
  m = results['metrics']
  # A 1 has few ink pixels, so the VAE gives it a *higher* likelihood than the digits it saw
  # (Nalisnick et al. 2019): -ELBO ranks the held-out 1s low, an AUROC far below 0.5.
  assert m['anomaly/auroc_neg_elbo'] < 0.3
  assert 0.0 <= m['baseline/pca/anomaly_auroc'] <= 1.0
  assert 'nll' in m  # the VAE's own test metrics are still there


# -- bad input through the command line: one line, exit 2, nothing written --------------------
@pytest.mark.parametrize('config, override, words', [
    ('sae_mnist.py:smoke', '--config.loss.sparsity_target=1.5', ('sparsity_target', '(0, 1)')),
    ('sae_mnist.py:smoke', '--config.loss.sparsity_target=0.0', ('sparsity_target', '(0, 1)')),
    ('sae_mnist.py:smoke', '--config.model.code_activation=linear', ('sigmoid',)),
    ('dae_mnist.py:smoke', '--config.noise.level=-0.1', ('noise.level', '>= 0')),
    ('ae_anomaly_mnist.py:smoke', '--config.data.held_out_labels=(10,)',
     ('held_out_labels', 'class 10')),
    ('ae_mnist.py:smoke', '--config.model.latent_dim=1000', ('latent_dim', 'larger than')),
])
def test_cli_bad_autoencoder_config(config, override, words, data_dir, tmp_path):
  proc = run_cli('--config', f'configs/{config}', '--workdir', str(tmp_path / 'w'), override)
  assert_one_line_error(proc, *words)
  assert not (tmp_path / 'w').exists()
