"""Several unpaired image sets in one run (CycleGAN's two domains): config.dataset = 'domains'.

config.data.domains maps a domain name to its own small data config:

  c.dataset = 'domains'
  c.data.domains = dict(
      a=dict(dataset='folder:/data/horse2zebra', train_split='trainA', eval_split='testA',
             test_split='testA', image_size=256, ...),
      b=dict(dataset='cycle_gan/horse2zebra', train_split='trainB', ...))

A domain's keys are DOMAIN_KEYS; each one left None (or out) takes the top-level value
(config.data_dir, config.data.<key>), so the splits default to config.data.train_split etc.
Any image data set genlab reads can be a domain: the offline builders, TFDS catalogue names,
`folder:PATH`. Domains are taken in name order (a ConfigDict's order, and the same after
config.json), so a domain's index, and its random stream, never depend on how it was written.

Batches map each domain name to that domain's batch, {'image': float32 (b, H, W, C) in
[0, 1], 'label': int32 (b,)}. Each training stream is the image pipeline's (images.TrainBatches)
with its own seed from (config.seed, domain index), so the domains are not aligned; the state is
still the one step. An eval pass goes over row i of every domain's split together, as long as
the longest one: a shorter domain is padded with zeros and its own 'mask', and the top-level
'mask' is 1 where any domain has a real row.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from genlab.data import batches as batches_lib
from genlab.data import images
from genlab.data import source as source_lib
from genlab.data import text
from genlab.errors import UserError

DOMAINS = 'domains'
DOMAIN_KEYS = ('dataset', 'data_dir', 'center_crop', 'image_size', 'channels', 'train_split',
               'eval_split', 'test_split')
_DOMAIN_TAG = 0x6A09E667  # Separates the domains' seeds from every other use of config.seed.


def is_domains(config) -> bool:
  return config.get('dataset', None) == DOMAINS


def domain_seed(seed, index: int) -> int:
  """The seed of domain `index`'s training stream, drawn from (seed, index)."""
  sequence = np.random.SeedSequence([batches_lib.seed64(seed), _DOMAIN_TAG, index])
  return int(sequence.generate_state(1, np.uint64)[0])


def settings(config) -> dict[str, dict]:
  """Domain name -> its settings, a dict like images.settings' (checked, defaults filled in),
  in name order."""
  binarize = images.data_get(config, 'binarize', 'none')
  if binarize != 'none':
    raise UserError(f"config.data.binarize={binarize!r} is not supported with "
                    f"config.dataset='{DOMAINS}': set --config.data.binarize=none.")
  if images.held_out_labels(config):
    raise UserError(f"config.data.held_out_labels is not supported with config.dataset="
                    f"'{DOMAINS}': set --config.data.held_out_labels=\"()\".")
  domains = images.data_get(config, 'domains', None)
  if not domains or not hasattr(domains, 'keys'):
    raise UserError(f"config.dataset='{DOMAINS}' needs config.data.domains, a dict of domain "
                    'name -> data config, with at least one domain: set it in the config file, '
                    "e.g. c.data.domains = dict(a=dict(dataset='digits'), "
                    "b=dict(dataset='mnist5k')).")
  top_splits = images.split_names(config)
  out = {}
  for name in sorted(domains.keys()):
    out[name] = _domain(config, name, domains[name], top_splits)
  return out


def _domain(config, name: str, d, top_splits: dict[str, str]) -> dict:
  where = f'config.data.domains.{name}'
  if name == 'mask':  # The top-level 'mask' of an eval batch has that key.
    raise UserError(f"{where}: 'mask' cannot name a domain (eval batches use the key): rename "
                    'the domain, e.g. to a or b.')
  if not hasattr(d, 'keys'):
    raise UserError(f'{where} must be a dict of data keys ({", ".join(DOMAIN_KEYS)}), not '
                    f"{type(d).__name__}: give e.g. dict(dataset='digits').")
  unknown = sorted(set(d.keys()) - set(DOMAIN_KEYS))
  if unknown:
    raise UserError(f'{where}.{unknown[0]} is not a domain key: remove it; a domain takes '
                    f'{", ".join(DOMAIN_KEYS)}.')
  dataset = d.get('dataset', None)
  if not isinstance(dataset, str) or not dataset:
    raise UserError(f'{where} has no dataset: set {where}.dataset to an image data set (digits, '
                    'mnist5k, cycle_gan/horse2zebra, folder:PATH, ...).')
  if dataset in (DOMAINS, batches_lib.NO_DATA) or text.is_text_dataset(dataset):
    raise UserError(f'{where}.dataset={dataset!r} is not an image data set: set it to one '
                    '(digits, mnist5k, cycle_gan/horse2zebra, folder:PATH, ...).')

  def get(key, default=None):
    value = d.get(key, None)
    return images.data_get(config, key, default) if value is None else value

  data_dir = d.get('data_dir', None) or config.get('data_dir', None)
  preprocess = {key: source_lib.check_size(get(key), f'domains.{name}.{key}')
                for key in ('center_crop', 'image_size')}
  preprocess['channels'] = source_lib.check_channels(get('channels'), f'domains.{name}.channels')
  splits = {role: d.get(f'{role}_split', None) or top for role, top in top_splits.items()}
  return dict(name=dataset, data_dir=data_dir, binarize='none', preprocess=preprocess,
              held_out_labels=(), splits=splits)


def role_of(config, ds: dict[str, dict], split: str) -> str:
  """The role ('eval', 'test' or 'train') whose top-level split name is `split`: the trainer
  asks for config.data.eval_split or test_split, and each domain reads its own for that role."""
  top = images.split_names(config)
  roles = [role for role in ('eval', 'test', 'train') if top[role] == split]
  if not roles:
    raise UserError(f"Split {split!r} is none of config.data.train_split/eval_split/test_split "
                    f"({top['train']!r}, {top['eval']!r}, {top['test']!r}): with "
                    f"config.dataset='{DOMAINS}' ask for one of those; each domain reads its own.")
  for name, s in ds.items():
    if len({s['splits'][role] for role in roles}) > 1:
      raise UserError(f"config.data.{roles[0]}_split and {roles[1]}_split are both {split!r} "
                      f"but domain {name!r} reads different splits for them: give the top-level "
                      'splits different names.')
  return roles[0]


def train_iterator(config, *, process_index: int = 0,
                   process_count: int = 1) -> batches_lib.TrainIterator:
  """This process's share of every domain's training stream; item s = {name: batch}."""
  ds = settings(config)
  global_batch = config.get('batch_size', None)
  batches_lib.local_batch_size(global_batch, process_count)
  batches_lib.check_process(process_index, process_count)
  streams = {name: images.train_batches(s, domain_seed(config.get('seed', 0), index),
                                        global_batch, process_index, process_count)
             for index, (name, s) in enumerate(ds.items())}
  return batches_lib.iterator(_Together(streams))


class _Together:
  """Random-access sequence: item s is {name: item s of that domain's stream}."""

  def __init__(self, streams: dict):
    self._streams = streams

  def __len__(self) -> int:
    return min(len(s) for s in self._streams.values())

  def __getitem__(self, step: int) -> dict:
    return {name: s[step] for name, s in self._streams.items()}


def eval_batches(config, split: str, batch_size: int, *, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict]:
  """One ordered pass over every domain's split of the role of `split` (see role_of)."""
  ds = settings(config)
  role = role_of(config, ds, split)
  local = batches_lib.local_batch_size(batch_size, process_count, what='eval batch_size')
  batches_lib.check_process(process_index, process_count)
  arrays = {name: images.load(s, s['splits'][role], binarized=False) for name, s in ds.items()}
  longest = max(len(x) for x, _, _ in arrays.values())

  def generate():
    for idx, real in batches_lib.eval_rows(longest, batch_size, local, process_index):
      batch = {}
      for name, (x, labels, scale) in arrays.items():
        own = real & (idx < len(x))
        batch[name] = images.eval_rows(x, labels, scale, np.where(own, idx, 0), own)
      batch['mask'] = real.astype(np.float32)
      yield batch

  return generate()


def split_arrays(config, role: str) -> dict[str, dict[str, np.ndarray]]:
  """{name: {'image': float32 (N, H, W, C) in [0, 1], 'label': int32 (N,)}}: every domain's
  whole split of `role` ('train' | 'eval' | 'test')."""
  out = {}
  for name, s in settings(config).items():
    x, labels, scale = images.load(s, s['splits'][role], binarized=False)
    out[name] = {'image': x.astype(np.float32) * np.float32(scale),
                 'label': labels.astype(np.int32)}
  return out


def get_info(config) -> source_lib.DataInfo:
  """The info of every domain (`domains`), under a top-level one: name 'digits+mnist5k', the
  first domain's image shape, the most classes and the longest split of each role."""
  infos = {name: images.info_of(s) for name, s in settings(config).items()}
  first = next(iter(infos.values()))
  return source_lib.DataInfo(
      name='+'.join(info.name for info in infos.values()), image_shape=first.image_shape,
      num_classes=max(info.num_classes for info in infos.values()),
      num_examples={role: max(info.num_examples[role] for info in infos.values())
                    for role in first.num_examples},
      domains=infos)
