"""The sweep's report: sweep.csv, sweep.md (ranked, best marked) and sweep.png.

Metric names are `test/<name>` for the final evaluation in a trial's results.json (e.g.
test/nll, test/bits_per_char), `eval/<name>` for its last validation evaluation in
metrics.jsonl (what early stopping compares, and all a stopped trial has), and `train_seconds`,
`steps_per_sec`, `step`.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Optional

from genlab import files
from genlab.errors import UserError
from genlab.sweep import trials as trials_lib

GOALS = ('min', 'max')
_STATUS_ORDER = {'done': 0, 'stopped': 1, 'interrupted': 2, 'failed': 3, 'pending': 4}


def collect(sweep_dir: str, trials: list[dict]) -> list[dict]:
  """One row per trial ({'name', 'overrides'}): status, overrides, metrics, error."""
  rows = []
  for t in trials:
    workdir = os.path.join(sweep_dir, t['name'])
    st = trials_lib.status(workdir)
    row = {'trial': t['name'], 'status': st['status'], 'overrides': t['overrides'],
           'metrics': {}, 'error': st.get('error', '')}
    evals = trials_lib.eval_rows(workdir)
    if evals:
      row['metrics'].update({f'eval/{k}': v for k, v in evals[-1].items()
                             if k not in ('split', 'step') and _is_number(v)})
      row['metrics']['step'] = evals[-1]['step']
    results = files.read_json(os.path.join(workdir, 'results.json'))
    if results:
      row['metrics'].update({f'test/{k}': v for k, v in results['metrics'].items()
                             if _is_number(v)})
      for k in ('step', 'train_seconds', 'steps_per_sec'):
        if _is_number(results.get(k)):
          row['metrics'][k] = results[k]
    rows.append(row)
  return rows


def _is_number(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def metric_names(rows: list[dict]) -> list[str]:
  return sorted({k for r in rows for k in r['metrics']})


def rank(rows: list[dict], metric: Optional[str], goal: str) -> list[dict]:
  """Rows with the metric first, best first; the others after, by status."""
  if metric is None:
    return sorted(rows, key=lambda r: (_STATUS_ORDER[r['status']], r['trial']))
  if not any(metric in r['metrics'] for r in rows):
    raise UserError(f'No trial reports the sweep metric {metric!r}; the trials report '
                    f'{metric_names(rows) or "nothing yet"}. Choose one with --sweep_metric '
                    '(re-running with --mode=sweep_report reruns no trial).')
  sign = 1 if goal == 'min' else -1
  return sorted(rows, key=lambda r: (metric not in r['metrics'],
                                     sign * r['metrics'].get(metric, 0.0),
                                     _STATUS_ORDER[r['status']], r['trial']))


def write(sweep_dir: str, rows: list[dict], keys: list[str], metric: Optional[str],
          goal: str) -> dict[str, str]:
  """Writes the three files; returns {'csv', 'md', 'png' (if drawn)} -> path."""
  rows = rank(rows, metric, goal)
  best = rows[0]['trial'] if metric and metric in rows[0]['metrics'] else None
  paths = {'csv': os.path.join(sweep_dir, 'sweep.csv'), 'md': os.path.join(sweep_dir, 'sweep.md')}
  names = metric_names(rows)
  with open(paths['csv'], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['rank', 'trial', 'status', 'best', *keys, *names, 'error'])
    for i, r in enumerate(rows, 1):
      w.writerow([i, r['trial'], r['status'], int(r['trial'] == best),
                  *(r['overrides'].get(k, '') for k in keys),
                  *(r['metrics'].get(n, '') for n in names), r['error']])
  with open(paths['md'], 'w') as f:
    f.write(markdown(rows, keys, metric, goal, best))
  if metric and best:
    paths['png'] = os.path.join(sweep_dir, 'sweep.png')
    plot(paths['png'], rows, keys, metric, goal, best)
  return paths


def _md_columns(rows: list[dict], metric: Optional[str]) -> list[str]:
  """The ranking metric (and its last validation value, all an early-stopped trial has), the
  other final test metrics (not the baselines), the step and the training time."""
  names = metric_names(rows)
  test = [n for n in names if n.startswith('test/') and n.count('/') == 1 and n != metric]
  shadow = f'eval/{metric[5:]}' if metric and metric.startswith('test/') else None
  return ([metric] if metric else []) + ([shadow] if shadow in names else []) + test[:6] + [
      n for n in ('step', 'train_seconds') if n in names]


def markdown(rows, keys, metric, goal, best) -> str:
  columns = _md_columns(rows, metric)
  header = ['', 'trial', 'status', *keys, *columns]
  lines = [f'Sweep of {len(rows)} trials' + (f', ranked by {metric} ({goal})' if metric
                                             else '') + '.', '',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for r in rows:
    cells = ['**best**' if r['trial'] == best else '', f'`{r["trial"]}`',
             r['status'] + (f': {r["error"]}' if r['error'] else ''),
             *(_fmt(r['overrides'].get(k, '')) for k in keys),
             *(_fmt(r['metrics'].get(c, '')) for c in columns)]
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  return '\n'.join(lines) + '\n'


def _fmt(v) -> str:
  if isinstance(v, float):
    return f'{v:.5g}'
  return str(v)


def plot(path: str, rows, keys, metric, goal, best) -> None:
  """The metric against each swept hyperparameter, one panel each; the best trial starred."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  scored = [r for r in rows if metric in r['metrics']]
  fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), squeeze=False)
  for ax, key in zip(axes[0], keys):
    xs = [r['overrides'].get(key) for r in scored]
    ys = [r['metrics'][metric] for r in scored]
    numeric = all(_is_number(x) for x in xs)
    if not numeric:  # categories in order of first appearance
      labels = list(dict.fromkeys(str(x) for x in xs))
      xs = [labels.index(str(x)) for x in xs]
      ax.set_xticks(range(len(labels)), labels, rotation=30, ha='right')
    ax.scatter(xs, ys, color='tab:blue', zorder=2)
    for x, y, r in zip(xs, ys, scored):
      if r['trial'] == best:
        ax.scatter([x], [y], marker='*', s=260, color='tab:red', zorder=3, label='best')
    if numeric:  # ticks at the swept values; a log axis for positive values spanning 3x+
      if min(xs) > 0 and max(xs) / min(xs) >= 3:
        ax.set_xscale('log')
      ax.minorticks_off()
      values = sorted(set(xs))
      if len(values) <= 8:
        ax.set_xticks(values, [_fmt(v) for v in values])
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
  axes[0][0].legend(loc='best')
  fig.suptitle(f'{metric} ({goal}) over {len(scored)} trials')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
