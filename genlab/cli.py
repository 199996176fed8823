"""Command line: the --config flag, the error contract, and the modes (run.py has the rest)."""
from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from genlab.errors import UserError

CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/vae_mnist.py[:smoke].',
    lock_config=True)


def default_workdir(config_arg: str) -> str:
  path, _, variant = config_arg.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  return os.path.join('runs', f'{name}-{variant.replace(",", "-")}' if variant else name)


def load_config():
  """The --config ConfigDict; a missing flag or an unreadable file is a UserError."""
  if CONFIG.value is None:
    raise UserError('Give an experiment: --config configs/<name>.py (see configs/).')
  path = config_flags.get_config_filename(flags.FLAGS['config']).partition(':')[0]
  if not os.path.isfile(path):
    raise UserError(f'Cannot load --config {path}: No such file. Give an existing file, '
                    'e.g. --config configs/vae_mnist.py.')
  return CONFIG.value


def execute(*, mode: str, workdir: str | None, num_samples: int, output: str | None,
            text_options: dict | None = None, sweep: bool = False,
            sweep_options: dict | None = None) -> None:
  """Runs one mode of the experiment given by --config (see run.py for the flags)."""
  if sweep or mode == 'sweep_report':
    _sweep(mode, workdir, sweep, sweep_options or {})
    return
  from genlab import parallel  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  parallel.maybe_initialize_distributed()
  config = load_config()
  workdir = workdir or default_workdir(config_flags.get_config_filename(flags.FLAGS['config']))
  print(f'genlab: {mode} {config.method} on {config.dataset}, workdir {workdir}',
        file=sys.stderr)
  if mode == 'train':
    results = train.train_and_evaluate(config, workdir)
    if results is not None:
      print(f'results ({workdir}/results.json): {results["metrics"]}')
  elif mode == 'eval':
    results = train.evaluate(config, workdir)
    print(f'results ({workdir}/results.json): {results["metrics"]}')
  else:
    output = output or os.path.join(workdir, 'samples.npz')
    print(f'wrote {train.sample(config, workdir, num_samples, output, text_options=text_options)}')


def _sweep(mode: str, workdir: str | None, sweep: bool, options: dict) -> None:
  """--sweep (each trial a `run.py` process of its own) or --mode=sweep_report."""
  from genlab.sweep import driver  # pylint: disable=g-import-not-at-top
  if sweep and mode != 'train':
    raise UserError(f'--sweep trains every trial; it does not go with --mode={mode} (use '
                    '--mode=sweep_report for the table of a sweep).')
  config = load_config()
  config_arg = config_flags.get_config_filename(flags.FLAGS['config'])
  opts = driver.Options(**options)
  workdir = workdir or default_workdir(config_arg) + '-sweep'
  if mode == 'sweep_report':
    driver.report(config_arg, workdir, opts)
  else:
    base = dict(config_flags.get_override_values(flags.FLAGS['config']))
    driver.run(config, config_arg, base, workdir, opts)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with config override mistakes turned into one clear line."""
  try:
    return flags.FLAGS(argv)
  except (flags.Error, UserError) as e:
    message = str(e).splitlines()[0]
  except (AttributeError, KeyError) as e:
    key = str(e).strip('"\'')
    bad = [a for a in argv if a.startswith('--config.') and key in a.split('=')[0]]
    message = (f'{bad[0] if bad else key}: the config has no key {key!r}; check the spelling '
               'against the config file (python run.py --config FILE --helpfull lists them).')
  except Exception as e:  # pylint: disable=broad-except
    message = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
  print(f'genlab: error: {message}', file=sys.stderr)
  sys.exit(2)


def _quiet(main_fn):
  """Orbax and TFDS log every file at INFO; show warnings only, unless --verbosity is given."""
  def wrapped(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
    return main_fn(argv)
  return wrapped


def run_main(main_fn) -> None:
  """app.run with genlab's error contract: a UserError is one line on stderr and exit 2."""
  try:
    app.run(_quiet(main_fn), flags_parser=_parse_flags)
  except UserError as e:
    print(f'genlab: error: {e}', file=sys.stderr)
    sys.exit(2)

