"""Character LSTMs on Shakespeare's plays against count-based n-gram models, in bits/char.

  python experiments/char_lstm_shakespeare/reproduce.py            # about 15 min on 2 CPU cores
  python experiments/char_lstm_shakespeare/reproduce.py --long     # + 3x the steps (45 min)
  python experiments/char_lstm_shakespeare/reproduce.py --large    # + the GPU-sized model
  python experiments/char_lstm_shakespeare/reproduce.py --smoke    # seconds, checks the plumbing

Trains (or resumes) character LSTMs of several sizes (configs/lstm_char_shakespeare.py and
variants) on the 30 train plays, and prints one table of bits per character on the 3 held-out
test plays: the unigram and n-gram models (n = 2..6, interpolated modified Kneser-Ney and
Witten-Bell, fitted by genlab on the same train plays; the best chosen on the validation plays)
beside each LSTM with its parameters and training time. Then samples of the default LSTM at
the temperatures 0.2, 0.5, 1.0 and 1.2. Where TFDS `tiny_shakespeare` is prepared, the default
LSTM is also trained on it, for the reference point of nanoGPT's character Transformer.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

# pylint: disable-next=wrong-import-position
from configs import lstm_char_shakespeare, lstm_char_shakespeare_large
from genlab import cli, config_defaults, train  # pylint: disable=wrong-import-position
from genlab.errors import UserError  # pylint: disable=wrong-import-position

TEMPERATURES = (0.2, 0.5, 1.0, 1.2)
NANOGPT_TINY_SHAKESPEARE_NATS = 1.47  # best validation loss of nanoGPT's character model
SMOOTHING_NAMES = {'add_one': 'add-one', 'kneser_ney': 'Kneser-Ney', 'interpolated': 'Witten-Bell'}

_SMOKE = flags.DEFINE_bool('smoke', False, 'Tiny configs: checks the plumbing in seconds.')
_LARGE = flags.DEFINE_bool('large', False, 'Also train the GPU-sized 3 x 512 model.')
_LONG = flags.DEFINE_bool('long', False, 'Also train the default model for 3x the steps '
                          '(about 45 min on 2 CPU cores).')
_ROOT = flags.DEFINE_string('workdir_root', 'runs/char_lstm_shakespeare', 'Where the runs go.')
_SAMPLE_LENGTH = flags.DEFINE_integer('sample_length', 400, 'Characters per sample.')


def configs():
  """(row name, workdir name, config) of the LSTMs to train, the default one first."""
  arg = 'smoke' if _SMOKE.value else None
  default = lstm_char_shakespeare.get_config(arg)
  small = lstm_char_shakespeare.get_config(arg)
  small.model.update(embed_dim=64, hidden_dim=128, num_layers=1)
  small.baseline.orders = ()
  rows = [('(default)', 'lstm_2x256', default), ('', 'lstm_1x128', small)]
  if _LONG.value:
    long = lstm_char_shakespeare.get_config(arg)
    config_defaults.set_schedule(long, long.batch_size, 3 * long.num_train_steps,
                                 log_every=long.log_every_steps, eval_every=1_500,
                                 checkpoint_every=500)
    long.baseline.orders = ()
    rows.append((f'({long.num_train_steps} steps)', 'lstm_2x256_long', long))
  if _LARGE.value:
    large = lstm_char_shakespeare_large.get_config(arg)
    large.baseline.orders = ()
    rows.append(('(large config)', 'lstm_3x512', large))
  tiny = lstm_char_shakespeare.get_config(arg)
  tiny.dataset = 'tiny_shakespeare'
  tiny.baseline.orders = ()
  rows.append(('on tiny_shakespeare', 'tiny_shakespeare_2x256', tiny))
  return [(f'LSTM {c.model.num_layers} x {c.model.hidden_dim} {note}'.strip(), workdir, c)
          for note, workdir, c in rows]


def _last_eval(workdir: str) -> float:
  bits = float('nan')
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      row = json.loads(line)
      if row['split'] == 'eval':
        bits = row['bits_per_char']
  return bits


def measure(name, workdir, config):
  results, skipped = train.train_or_skip(config, workdir)
  if skipped:
    return {'model': name, 'skipped': skipped}
  run, state, _ = train.restore(config, workdir)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  return {'model': name, 'dataset': config.dataset, 'metrics': results['metrics'],
          'validation_bits_per_char': _last_eval(workdir), 'parameters': int(params),
          'minutes': results['train_seconds'] / 60, 'run': run, 'state': state}


def print_table(rows):
  default = rows[0]
  m = default['metrics']
  best = m['baseline/best/bits_per_token']
  print("\nBits per character on the test plays (hamlet, henry_v, much_ado_about_nothing)")
  print(f'{"model":<40} {"bits/char":>9} {"vs best n-gram":>15} {"parameters":>11} '
        f'{"train min":>9}')
  for order in range(1, 11):
    for smoothing in ('add_one', 'kneser_ney', 'interpolated'):
      key = f'baseline/{smoothing}_{order}/bits_per_token'
      if key in m:
        label = f'{order}-gram, {SMOOTHING_NAMES[smoothing]}'
        print(f'{label:<40} {m[key]:>9.3f} {m[key] - best:>+15.3f}')
  print(f'{"best n-gram (chosen on validation)":<40} {best:>9.3f}   (order '
        f'{int(m["baseline/best/order"])}, '
        f'{"Kneser-Ney" if m["baseline/best/kneser_ney"] else "Witten-Bell"})')
  for r in rows:
    if 'skipped' in r:
      print(f'{r["model"]:<40} skipped: {r["skipped"]}')
      continue
    bits = r['metrics']['bits_per_char']
    gap = f'{bits - best:>+15.3f}' if r['dataset'] == default['dataset'] else f'{"":>15}'
    print(f'{r["model"]:<40} {bits:>9.3f} {gap} {r["parameters"]:>11,} {r["minutes"]:>9.1f}')
  tiny = [r for r in rows if r.get('dataset') == 'tiny_shakespeare']
  if tiny:
    nats = tiny[0]['validation_bits_per_char'] * 0.6931471805599453
    print(f'tiny_shakespeare validation: {nats:.3f} nats/char (nanoGPT character Transformer: '
          f'{NANOGPT_TINY_SHAKESPEARE_NATS} nats/char)')


def print_samples(row, length: int):
  run, state = row['run'], row['state']
  print(f'\nSamples of the {row["model"]} (prompt {run.config.sample.prompt!r}, {length} '
        'characters)')
  for i, t in enumerate(TEMPERATURES):
    key = jax.random.fold_in(jax.random.key(run.config.seed), i)
    text = run.method.generate_text(state, key, 1, temperature=t, length=length)[0]
    print(f'\n--- temperature {t}\n{text}')


def main(_argv):
  rows = [measure(name, os.path.join(_ROOT.value, workdir), config)
          for name, workdir, config in configs()]
  if 'skipped' in rows[0]:
    raise UserError(f'the default model could not run: {rows[0]["skipped"]}')
  print_table(rows)
  print_samples(rows[0], _SAMPLE_LENGTH.value)
  summary = [{k: v for k, v in r.items() if k not in ('run', 'state')} for r in rows]
  with open(os.path.join(_ROOT.value, 'summary.json'), 'w') as f:
    json.dump(summary, f, indent=2)


if __name__ == '__main__':
  cli.run_main(main)  # genlab's error contract: one line for a mistake, or for Ctrl-C
