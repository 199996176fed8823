"""The reproduction script runs end to end, and the default experiment beats its baseline."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from genlab import train


def test_burda2016_reproduce_smoke_prints_paper_beside_genlab(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'burda2016_vae', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
      timeout=600, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()
  mnist5k = next(l for l in lines if l.startswith('mnist5k'))
  paper, nll, neg_elbo, baseline, _ = map(float, mnist5k.split()[1:])
  assert paper == 86.76 and nll <= neg_elbo + 1e-3 and baseline > 0
  assert any(l.startswith('mnist ') and 'skipped' in l and 'mnist5k' in l for l in lines)


@pytest.mark.slow
def test_default_vae_mnist_clearly_beats_the_pixel_baseline(data_dir, tmp_path):
  """The full default run (about 2 minutes): the README's figures, within a margin."""
  from configs import vae_mnist  # pylint: disable=g-import-not-at-top
  results = train.train_and_evaluate(vae_mnist.get_config(), str(tmp_path / 'vae'))
  m = results['metrics']
  assert m['nll'] < 103.0 and m['neg_elbo'] < 109.0  # README: 100.22 and 106.57
  assert m['nll'] < m['neg_elbo']                    # the IWAE bound is the tighter one
  saved = json.load(open(tmp_path / 'vae' / 'results.json'))
  assert saved['metrics'] == m


@pytest.mark.slow  # 0.5-2 min; burda2016 stands for the reproduction scripts in CI
def test_goodfellow2014_reproduce_smoke_prints_table_1(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'goodfellow2014_gan', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}',
       f'--classifier_workdir={tmp_path / "classifier"}'], cwd=ROOT, capture_output=True,
      text=True, timeout=900, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = proc.stdout
  assert 'Adversarial nets' in out and '225 +- 2.0' in out
  for model in ('GAN (Goodfellow MLP)', 'DCGAN', 'VAE (decoder means)', 'real training digits',
                'real vs real'):
    row = next(l for l in out.splitlines() if l.startswith(model))
    assert 'skipped' not in row, row
  # Full MNIST is not here: its rows say why, naming the offline data set.
  assert any('skipped' in l and 'mnist5k' in l for l in out.splitlines())


@pytest.mark.slow  # 0.5-2 min; burda2016 stands for the reproduction scripts in CI
def test_autoencoders_vs_classical_smoke_prints_the_four_tables(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'autoencoders_vs_classical',
                                    'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}', '--held_out=1'], cwd=ROOT,
      capture_output=True, text=True, timeout=900, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()
  for title in ('1. Dimensionality reduction', '2. Denoising', '3. Sparse', '4. Anomaly'):
    assert any(l.startswith(title) for l in lines), title
  rows = {l.split()[0] + l.split()[1]: l for l in lines if len(l.split()) > 2}
  for key in ('MLP2', 'MLP32', 'conv8', 'gaussian0.5', 'salt_and_pepper0.3', 'masking0.5',
              'KL,beta=3', 'L1,lambda=0.1', '10.'):
    assert any(k.startswith(key) for k in rows), key
  for picture in ('mlp_codes_2d', 'pca_2d', 'denoising_masking', 'features_kl'):
    assert (tmp_path / 'pictures' / f'{picture}.png').exists(), picture


@pytest.mark.slow  # 0.5-2 min; burda2016 stands for the reproduction scripts in CI
def test_char_lstm_shakespeare_smoke_prints_ngrams_beside_lstms(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'char_lstm_shakespeare', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}', '--sample_length=30'], cwd=ROOT,
      capture_output=True, text=True, timeout=900, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.splitlines()
  best = next(l for l in lines if l.startswith('best n-gram'))
  assert float(best.split()[5]) > 0
  for row in ('1-gram, add-one', '3-gram, Kneser-Ney', '3-gram, Witten-Bell',
              'LSTM 1 x 32 (default)', 'LSTM 1 x 128'):
    line = next(l for l in lines if l.startswith(row))
    assert 'skipped' not in line and float(line[40:].split()[0]) > 0, line
  # tiny_shakespeare is not prepared here: its row says so, naming the offline builder.
  assert any(l.startswith('LSTM') and 'tiny_shakespeare' in l and 'skipped' in l
             and 'shakespeare' in l for l in lines)
  for t in ('0.2', '0.5', '1.0', '1.2'):
    assert f'--- temperature {t}' in lines
  assert len(json.load(open(tmp_path / 'summary.json'))) == 3


@pytest.mark.slow  # 2-4 min of compiling 12 small runs
def test_gatys2016_reproduce_smoke_writes_the_grid_textures_and_strip(tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'gatys2016_style', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
      timeout=900, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ('grid.png', 'textures.png', 'strip.png'):
    assert (tmp_path / name).is_file(), name
  rows = [l for l in proc.stdout.splitlines() if ' x ' in l or l.startswith('texture ')]
  assert len(rows) == 12, proc.stdout


@pytest.mark.slow  # 1-2 min; burda2016 stands for the reproduction scripts in CI
def test_zhu2017_cyclegan_smoke_prints_both_directions(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'zhu2017_cyclegan', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
      timeout=900, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines() if ('digits -> MNIST' in l or 'MNIST -> digits' in l)
          and not l.startswith('Accuracy:')]  # the closing explanation names both too
  assert len(rows) == 8, proc.stdout  # source only, CycleGAN, + noise, + semantic; two ways
  assert all('%' in r for r in rows)


@pytest.mark.slow  # minutes of StyleGAN2 compiles; burda2016 stands for the scripts in CI
def test_karras2020_reproduce_smoke_prints_three_gans_and_the_references(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'karras2020_stylegan2', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
      timeout=1800, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines()
          if l.startswith(('StyleGAN2 ', 'DCGAN ', 'GAN (Goodfellow MLP)'))]
  assert len(rows) == 3, proc.stdout
  assert len(rows[0].split()) == len(rows[1].split()) + 1  # StyleGAN2 also has its path length
  assert 'FID 2.84' in proc.stdout and 'NOT run here' in proc.stdout


@pytest.mark.slow  # a few minutes: seven smoke runs, their metrics and two CAS classifiers
def test_generative_zoo_smoke_prints_one_row_per_family(data_dir, tmp_path):
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'generative_zoo_mnist5k', 'reproduce.py'),
       '--smoke', f'--workdir_root={tmp_path}', f'--classifier_workdir={tmp_path / "clf"}',
       f'--grids={tmp_path / "grids"}', '--seeds=2'], cwd=ROOT, capture_output=True,
      text=True, timeout=1800, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines() if l.startswith('| ')]
  for name in ('vae_mnist', 'gan_mnist', 'dcgan_mnist', 'cgan_mnist', 'stylegan2_mnist',
               'ddpm_mnist', 'ddpm_cond_mnist'):
    row = next(r for r in rows if f'`{name}`' in r)
    conditional = name in ('cgan_mnist', 'ddpm_cond_mnist')
    assert (row.split('|')[6].strip() == '-') != conditional, row  # a CAS: conditional only
    assert os.path.isfile(tmp_path / 'grids' / f'{name}.png')
  # The conditional DDPM's checkpoint again, sampled without guidance: a row of its own.
  unguided = next(r for r in rows if r.startswith('| conditional DDPM, no guidance'))
  assert unguided.split('|')[6].strip() not in ('', '-') and unguided != next(
      r for r in rows if r.startswith('| conditional DDPM, guidance 1'))
  assert os.path.isfile(tmp_path / 'grids' / 'ddpm_cond_mnist_w0.png')
  assert os.path.isfile(tmp_path / 'ddpm_cond_mnist' / 'zoo_ddpm_cond_mnist_w0.json')
  real = next(r for r in rows if r.startswith('| real vs real'))
  assert real.split('|')[6].strip() not in ('', '-')  # the CAS of real digits
  assert 'bits' not in real and '(8-bit)' in next(r for r in rows if '`ddpm_mnist`' in r)
  assert '(binary)' in next(r for r in rows if '`vae_mnist`' in r)
  spread = proc.stdout.split('Spread over 2 seeds')[1]
  assert spread.count('+-') >= 8  # two models x four metrics at least


@pytest.mark.slow  # 1-3 min: two smoke runs, six samplers, two guidance scales with CAS
def test_ho2020_reproduce_smoke_prints_samplers_and_guidance(data_dir, tmp_path):
  script = os.path.join(ROOT, 'experiments', 'ho2020_ddpm', 'reproduce.py')
  proc = subprocess.run(
      [sys.executable, script, '--smoke', f'--workdir_root={tmp_path}', '--guidance=0,2',
       '--num_samples=20'], cwd=ROOT, capture_output=True, text=True, timeout=1800,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = [l for l in proc.stdout.splitlines() if l.startswith('| ') and '---' not in l]
  samplers = [r for r in rows if r.startswith(('| ancestral', '| ddim'))]
  guided = [r for r in rows if r.startswith('| w = ')]
  assert len(samplers) == 6 and all(r.split('|')[5].strip() == '-' for r in samplers), rows
  assert [r.split('|')[1].strip() for r in guided] == ['w = 0', 'w = 2'], rows
  assert all(r.split('|')[5].strip() != '-' for r in guided)  # the conditional model's CAS
  assert 'NOT run here' in proc.stdout
  bad = subprocess.run([sys.executable, script, '--guidance=-1', f'--workdir_root={tmp_path}'],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert bad.returncode == 2 and '--guidance scales must be >= 0' in bad.stderr, bad.stderr
