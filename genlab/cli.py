"""Command line: the --config flag, the error contract, and the modes (run.py has the rest).

The error contract: a mistake the user can fix (a UserError, a flag or override parsing
error, a file-system fault) is one `genlab: error: ...` line on stderr and exit 2; SIGINT or
SIGTERM is one `genlab: stopped by ...` line and exit 130 or 143. Never a traceback for these.
`--config.help` prints the resolved config (every key, its type and value) and exits.
"""
from __future__ import annotations

import difflib
import errno
import os
import re
import sys
import traceback

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
from ml_collections.config_flags import config_flags as config_flags_impl

from genlab import log
from genlab import peers
from genlab import signals
from genlab.errors import UserError

_HELP = '--config.help'
# config_flags defines a flag for every --config.KEY in sys.argv when the flag below is
# defined, so --config.help is taken out of sys.argv first (help is not a key).
_SHOW_CONFIG = _HELP in sys.argv
sys.argv = [a for a in sys.argv if a != _HELP]
CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/vae_mnist.py[:smoke]; override any '
    'key with --config.KEY=VALUE; --config.help lists every key with its type and value.',
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


def _leaves(config, prefix=''):
  """(dotted key, type name, value) of every leaf of a ConfigDict."""
  for key in sorted(config.keys()):
    value = config[key]
    if hasattr(value, 'keys') and hasattr(value, 'get_type'):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      kind = config.get_type(key)
      yield f'{prefix}{key}', getattr(kind, '__name__', str(kind)), value


def config_table(config) -> str:
  rows = list(_leaves(config))
  width = max(len(k) for k, _, _ in rows)
  kinds = max(len(t) for _, t, _ in rows)
  return '\n'.join(f'{k:<{width}}  {t:<{kinds}}  {v!r}' for k, t, v in rows)


def execute(*, mode: str, workdir: str | None, num_samples: int, output: str | None,
            text_options: dict | None = None, sweep: bool = False,
            sweep_options: dict | None = None, direction: str | None = None,
            edit_options: dict | None = None) -> None:
  """Runs one mode of the experiment given by --config (see run.py for the flags)."""
  if sweep or mode == 'sweep_report':
    _sweep(mode, workdir, sweep, sweep_options or {})
    return
  from genlab import parallel  # pylint: disable=g-import-not-at-top
  from genlab import sampling  # pylint: disable=g-import-not-at-top
  from genlab import train  # pylint: disable=g-import-not-at-top
  parallel.maybe_initialize_distributed()
  config = load_config()
  if direction is not None:
    _set_direction(config, mode, direction)
  edit_options = {k: v for k, v in (edit_options or {}).items() if v is not None}
  if edit_options and mode != 'edit':
    names = '/--'.join(sorted(_EDIT_FLAGS[k] for k in edit_options))
    raise UserError(f'--{names}: for --mode=edit only, nothing with --mode={mode}: leave '
                    'out, or give --mode=edit.')
  workdir = workdir or default_workdir(config_flags.get_config_filename(flags.FLAGS['config']))
  log.info(f'{mode} {config.method} on {config.dataset}, workdir {workdir}')
  if mode == 'train':
    results = train.train_and_evaluate(config, workdir)
    print(f'results ({workdir}/{train.RESULTS_FILE}, step {results["step"]}): '
          f'{results["metrics"]}')
  elif mode == 'eval':
    results = train.evaluate(config, workdir)
    print(f'results (step {results["step"]}): {results["metrics"]}')
  elif mode == 'edit':
    from genlab import edit  # pylint: disable=g-import-not-at-top
    print(f'wrote {edit.edit(config, workdir, edit_options_from(edit_options))}')
  else:
    output = output or os.path.join(workdir, 'samples.npz')
    print(f'wrote {sampling.sample(config, workdir, num_samples, output, text_options=text_options)}')


# Options of genlab.edit.Options -> the flag that sets them (run.py).
_EDIT_FLAGS = {'method': 'edit_method', 'num_directions': 'edit_directions',
               'index': 'edit_index', 'layers': 'edit_layers', 'strengths': 'edit_strengths',
               'num_seeds': 'edit_seeds', 'psis': 'edit_psis', 'num_w_samples': 'edit_samples',
               'project': 'project', 'project_count': 'project_count',
               'project_steps': 'project_steps', 'project_space': 'project_space',
               'project_resize': 'project_resize'}


def edit_options_from(given: dict):
  """genlab.edit.Options from the --edit_* / --project* flags given (the lists parsed)."""
  from genlab import edit  # pylint: disable=g-import-not-at-top
  given = dict(given)
  for key in ('strengths', 'psis'):
    if key in given:
      given[key] = edit.parse_floats(f'--{_EDIT_FLAGS[key]}', given[key])
  return edit.Options(**given)


def _set_direction(config, mode: str, direction: str) -> None:
  """--direction: config.sample.direction of a method that translates between two domains."""
  if mode != 'sample':
    raise UserError(f'--direction chooses what --mode=sample translates; it does nothing with '
                    f'--mode={mode}: leave it out.')
  if 'direction' not in (config.get('sample', None) or {}):
    raise UserError(f'--direction applies to methods that translate between two domains '
                    f'(cyclegan); {config.get("method")!r} has no sample.direction: leave it out.')
  config.sample.direction = direction


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


def _file_config(argv: list[str]):
  """The ConfigDict of the --config file in `argv`, without overrides; None if unreadable."""
  arg = next((a.split('=', 1)[1] for a in argv if a.startswith('--config=')), None)
  if arg is None and '--config' in argv[:-1]:
    arg = argv[argv.index('--config') + 1]
  try:
    return config_flags_impl._ConfigFileParser(name='config').parse(arg)  # pylint: disable=protected-access
  except Exception:  # pylint: disable=broad-except
    return None


def _nearest_keys(config, bad: str) -> list[str]:
  keys = [k for k, _, _ in _leaves(config)]
  keys += sorted({k.rsplit('.', 1)[0] for k in keys if '.' in k})  # sections too
  def score(a, b):
    return difflib.SequenceMatcher(None, a, b).ratio()
  scores = {k: score(bad, k) for k in keys}
  if max(scores.values()) < 0.75:  # the last part alone: learnin_rate -> optimizer.learning_rate
    tail = bad.rsplit('.', 1)[-1]
    scores = {k: score(tail, k.rsplit('.', 1)[-1]) for k in keys}
  best = max(scores.values())
  if best < 0.6:
    return []
  return sorted((k for k in keys if scores[k] >= best - 0.05), key=lambda k: -scores[k])[:3]


def _unknown_key_message(argv: list[str]) -> str | None:
  """The line for an override of a key the config does not have, or None if none is."""
  config = _file_config(argv)
  if config is None:
    return None
  for arg in argv:
    if not arg.startswith('--config.'):
      continue
    key = arg[len('--config.'):].split('=', 1)[0]
    node = config
    for part in key.split('.'):
      if not hasattr(node, 'keys') or part not in node:
        near = _nearest_keys(config, key)
        return (f'--config.{key}: the config has no key {key!r}'
                f'{"; did you mean " + " or ".join(near) + "?" if near else "."} '
                '--config.help lists every key.')
      node = node[part]
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with config override mistakes turned into one clear line."""
  argv = [a for a in argv if a != _HELP]
  try:
    rest = flags.FLAGS(argv)
  except (flags.Error, UserError, AttributeError, KeyError, ValueError, TypeError) as e:
    message = _unknown_key_message(argv) or _first_line(e)
    print(f'genlab: error: {message}', file=sys.stderr)
    sys.exit(2)
  if _SHOW_CONFIG:
    try:
      print(config_table(load_config()))
    except UserError as e:
      print(f'genlab: error: {e}', file=sys.stderr)
      sys.exit(2)
    sys.exit(0)
  return rest


def _first_line(e: BaseException) -> str:
  lines = str(e).strip().splitlines()
  first = lines[0] if lines else ''
  return first if isinstance(e, (flags.Error, UserError)) else f'{type(e).__name__}: {first}'


def _quiet(main_fn):
  """Orbax and TFDS log every file at INFO; show warnings only, unless --verbosity is given."""
  def wrapped(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)
    log.quiet_libraries()
    peers.quiet_abort()
    return main_fn(argv)
  return wrapped


_FILE_SYSTEM_FIX = {
    errno.ENOSPC: 'free some space, then re-run the same command: it resumes from the last '
                  'complete checkpoint',
    errno.EDQUOT: 'free some space, then re-run the same command: it resumes from the last '
                  'complete checkpoint',
    errno.EROFS: 'give a --workdir (or --output) on a writable file system',
    errno.EACCES: 'give a --workdir (or --output) you can write, or fix its permissions',
    errno.EPERM: 'give a --workdir (or --output) you can write, or fix its permissions',
    errno.ENOTDIR: 'a path component is a file: give another --workdir',
    errno.EISDIR: 'a directory stands where a file belongs: give another path',
}


def file_system_error(e: OSError) -> str | None:
  """The one line for an OSError of the file system, or None for other OSErrors."""
  fix = _FILE_SYSTEM_FIX.get(e.errno)
  if fix is None:
    return None
  where = f' ({e.filename})' if e.filename else ''
  return f'{os.strerror(e.errno)}{where}: {fix}.'


# TensorStore (under Orbax) reports a failed write as a ValueError whose text holds the errno:
# ... Failed writing: "PATH": Failed to write 38807 bytes to file 8: No space left on device
# [os_error_code='28']
_TENSORSTORE_OS_ERROR = re.compile(r"\[os_error_code='(\d+)'\]")
_TENSORSTORE_PATH = re.compile(r'"(/[^"]+)"')


def _find_os_error(e: BaseException) -> OSError | None:
  """An OSError of the file system, possibly wrapped by a library (Orbax re-raises) or given
  as TensorStore's text."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in _FILE_SYSTEM_FIX:
      return e
    code = _TENSORSTORE_OS_ERROR.search(str(e))
    if code and int(code.group(1)) in _FILE_SYSTEM_FIX:
      path = _TENSORSTORE_PATH.search(str(e))
      return OSError(int(code.group(1)), os.strerror(int(code.group(1))),
                     path.group(1) if path else None)
    e = e.__cause__ or e.__context__
  return None


def _exit(code: int) -> None:
  peers.leave(code)  # a multi-process run: the others learn how this process ended
  sys.exit(code)


def run_main(main_fn) -> None:
  """app.run with genlab's error contract (the module docstring)."""
  if peers.needs_supervisor():
    sys.exit(peers.supervise(sys.argv))
  signals.install()
  try:
    app.run(_quiet(main_fn), flags_parser=_parse_flags)
  except SystemExit as e:
    peers.leave(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
    raise
  except UserError as e:
    print(f'genlab: error: {e}', file=sys.stderr)
    _exit(2)
  except signals.Interrupted as e:
    print(f'genlab: stopped by {e.name}{" " + e.message if e.message else ""}.',
          file=sys.stderr)
    _exit(e.exit_code)
  except Exception as e:  # pylint: disable=broad-except
    fs_error = _find_os_error(e)
    if fs_error is not None:
      print(f'genlab: error: {file_system_error(fs_error)}', file=sys.stderr)
      _exit(2)
    peers.wait_for_lost_peer()  # a collective that failed because a peer died
    traceback.print_exc()
    _exit(1)
