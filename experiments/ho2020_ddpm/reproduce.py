"""DDPM (Ho et al. 2020) on mnist5k: its samplers and classifier-free guidance, measured alike.

  python experiments/ho2020_ddpm/reproduce.py              # trains or resumes both models
  python experiments/ho2020_ddpm/reproduce.py --smoke      # the plumbing, in minutes
  python experiments/ho2020_ddpm/reproduce.py --models=ddpm_cond_mnist --guidance=0,1 \
      --num_samples=10000                                   # the CAS protocol, one model

Trains (or resumes) configs/ddpm_mnist.py and configs/ddpm_cond_mnist.py, then draws
--num_samples samples from the unconditional model with each sampler below (the same model,
the same number of samples, so the FIDs compare) and from the conditional one at several
guidance scales, and prints FID-in-domain, classifier score, precision / recall (and the CAS of
the conditional model) on the test split with the seconds each draw took on this machine.
Then the published reference numbers, NOT run here (they need a GPU and CIFAR-10 / CelebA).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax  # pylint: disable=wrong-import-position

from configs import ddpm_cond_mnist, ddpm_mnist  # pylint: disable=wrong-import-position
from genlab import cli, config_defaults, train  # pylint: disable=wrong-import-position
from genlab.errors import UserError  # pylint: disable=wrong-import-position
from genlab.metrics import sample_metrics  # pylint: disable=wrong-import-position

METRICS = ('fid', 'classifier_score', 'precision_recall')
# (sampler, steps, eta) of the unconditional model; the first is Ho et al.'s.
SAMPLERS = (('ancestral', 1000, 0.0), ('ancestral', 100, 0.0), ('ddim', 100, 0.0),
            ('ddim', 50, 0.0), ('ddim', 20, 0.0), ('ddim', 50, 1.0))
GUIDANCE = (0.0, 0.5, 1.0, 2.0, 4.0)
REFERENCE = (
    ('DDPM, CIFAR-10 32x32, ancestral 1,000 steps', 'FID 3.17, IS 9.46, NLL <= 3.75 bits/dim',
     'Ho et al. 2020, Table 1', 'python run.py --config configs/ddpm_cifar10.py'),
    ('the same network, DDIM (eta 0)', 'FID 13.36 / 6.84 / 4.67 / 4.16 / 4.04 at 10 / 20 / '
     '50 / 100 / 1,000 steps', 'Song et al. 2021, Table 1',
     '--config.sampler.kind=ddim --config.sampler.steps=S'),
)

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing.')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/ho2020_ddpm', 'Where the runs go.')
_NUM = flags.DEFINE_integer('num_samples', 1000, 'Samples per sampler setting.')
_MODELS = flags.DEFINE_multi_enum('models', ['ddpm_mnist', 'ddpm_cond_mnist'],
                                  ['ddpm_mnist', 'ddpm_cond_mnist'],
                                  'The models to train (or resume) and measure.')
_GUIDANCE = flags.DEFINE_list('guidance', [f'{w:g}' for w in GUIDANCE],
                              'Guidance scales of the conditional model.')
_CLASSIFIER = flags.DEFINE_string('classifier_workdir', '', 'The metric classifier\'s workdir '
                                  '(default: the genlab cache).')


def _config(module, smoke: bool):
  c = module.get_config('smoke' if smoke else None)
  if smoke:
    config_defaults.smoke_sample_metrics(c)
  if _CLASSIFIER.value:
    c.eval.classifier_workdir = _CLASSIFIER.value
  return c


def measure(config, workdir: str, settings: dict) -> dict:
  """The test metrics of `_NUM` samples drawn with the sampler `settings`, and their time."""
  variant = config.copy_and_resolve_references()
  with variant.unlocked():
    variant.sampler.update(settings)
    variant.eval.test_sample_metrics = METRICS + (
        ('cas',) if variant.model.conditional else ())
    variant.eval.num_metric_samples = variant.eval.cas_samples = _NUM.value
  run, state, _ = train.restore(variant, workdir)
  metrics = sample_metrics.make(variant, run.data_info)
  draws = {}

  def draw(n):
    t0 = time.perf_counter()
    samples = run.draw(state, jax.random.key(variant.seed), n)
    draws['seconds'] = time.perf_counter() - t0
    return samples
  out = metrics.evaluate(draw, 'test')
  return dict(out, seconds=draws['seconds'])


def _row(label: str, m: dict) -> str:
  cas = f'{100 * m["cas"]:.1f}' if 'cas' in m else '-'
  return (f'| {label} | {m["fid"]:.2f} | {m["classifier_score"]:.2f} | {m["precision"]:.3f} / '
          f'{m["recall"]:.3f} | {cas} | {m["seconds"]:.0f} |')


def _sampler_rows(config, workdir: str) -> list[str]:
  rows = []
  for sampler, steps, eta in SAMPLERS:
    steps = min(steps, config.diffusion.timesteps)
    m = measure(config, workdir, dict(kind=sampler, steps=steps, eta=eta))
    rows.append(_row(f'{sampler}, {steps} steps' + (f', eta {eta:g}' if sampler == 'ddim'
                                                    else ''), m))
  return rows


def _guidance_rows(config, workdir: str, guidance: list[float]) -> list[str]:
  return [_row(f'w = {w:g}', measure(config, workdir, dict(guidance=w))) for w in guidance]


def main(_):
  smoke = _SMOKE.value
  header = ('| {} | FID | classifier score | precision / recall | CAS | seconds |\n'
            '|---|---|---|---|---|---|')
  try:
    guidance = [float(w) for w in _GUIDANCE.value]
  except ValueError:
    raise UserError(f'--guidance takes numbers, got {",".join(_GUIDANCE.value)}.') from None
  if any(w < 0 for w in guidance):
    raise UserError(f'--guidance scales must be >= 0, got {",".join(_GUIDANCE.value)}.')
  # Each model is trained (or resumed) and then measured before the next, so that a model's
  # table can be printed while the other still trains elsewhere.
  for name in dict.fromkeys(_MODELS.value):
    module = ddpm_mnist if name == 'ddpm_mnist' else ddpm_cond_mnist
    config = _config(module, smoke)
    workdir = os.path.join(_ROOT.value, name)
    results = train.train_and_evaluate(config, workdir)
    print(f'{name}: {results["step"]:,} steps in {results["train_seconds"] / 60:.1f} min; test '
          f'bound {results["metrics"]["bits_per_dim"]:.3f} bits/dim')
    if config.model.conditional:
      rows = _guidance_rows(config, workdir, guidance)
      print(f'\nConditional DDPM, classifier-free guidance (sampler {config.sampler.kind}, '
            f'{config.sampler.steps} steps), {_NUM.value} samples per row')
      print(header.format('guidance'))
    else:
      rows = _sampler_rows(config, workdir)
      print(f'\nUnconditional DDPM, {_NUM.value} samples per row, mnist5k test split')
      print(header.format('sampler'))
    print('\n'.join(rows), flush=True)
  print('\nPublished reference numbers (NOT run here: no GPU, no data on this machine)')
  for what, figure, source, protocol in REFERENCE:
    print(f'- {what}: {figure} ({source})\n    to reproduce: {protocol}')


if __name__ == '__main__':
  cli.run_main(main)
