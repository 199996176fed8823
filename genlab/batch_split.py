"""The gradient of a mean-over-rows loss as the mean of independent slices' gradients.

Why: XLA's CPU backend (jax 0.10.2) runs most of a convolution's backward pass on one thread
(YNNPACK fusions that reduce over the batch, e.g. the kernel gradient); a traced step showed
one operation running at a time, ~1.2 of 2 cores busy. The same loss written as `splits`
independent slices of the batch, each with its own forward and backward in one jit, gives
the runtime independent operations to run at once: a 4-layer 3x3 conv stack at batch 64,
fwd + bwd, went from 470 to 265 ms (16 slices, 1.9 cores busy); the DDPM U-Net step from
295 to 193 ms (4 slices), CycleGAN's from 324 to 253 ms (2 slices). Each family using it sets
its own best number of slices for 'auto'. Not for the LSTM: its scan's small matmuls only got
slower (418 -> 489 ms with 2 slices). benchmarks/README.md has the measurements.

The slices are unrolled in Python, not a `lax.scan` or `vmap` (either would hand XLA one
batched operation again). Slice i holds rows i, i + splits, i + 2 splits, ...: a reshape of
the batch axis, so a batch sharded over devices stays sharded (each device's rows divide into
the slices alike) and outputs go back to the original row order.

The loss must be a mean over independent rows: no batch statistics (BatchNorm), no
minibatch-stddev across slices. Then, with equal slices, mean(slice means) is the batch mean
and the result is the same function up to float32 summation order. Randomness drawn inside
`fun` from a key (dropout) is drawn per slice from `fold_in(key, i)`, so its stream depends on
`splits`, in distribution the same.

Where only part of a network is free of batch statistics, the network slices that part itself
with slice_rows / join_rows: StyleGAN2's synthesis and D's blocks, with D's minibatch-stddev
epilogue on the joined rows (genlab/models/stylegan2.py; its step 266-327 -> 181-186 ms).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from genlab.errors import UserError


def resolve(splits: int | str, rows: int, cpu_splits: int, config_key: str = 'batch_split'
            ) -> int:
  """The number of slices for a batch of `rows` rows per device: `splits`, or for 'auto' on
  XLA's CPU backend the largest divisor of `cpu_splits` (the family's measured best) that
  divides `rows`; 1 on GPU and TPU, which run one batched operation well."""
  if splits == 'auto':
    if jax.default_backend() != 'cpu':
      return 1
    return next(k for k in range(cpu_splits, 0, -1) if rows % k == 0 and cpu_splits % k == 0)
  if not isinstance(splits, int) or isinstance(splits, bool) or splits < 1:
    raise UserError(f'config.{config_key}={splits!r}: use \'auto\' or a positive integer.')
  if rows % splits:
    raise UserError(f'config.{config_key}={splits} does not divide the {rows} rows of a batch '
                    f'on each device: use a divisor of {rows}, or \'auto\'.')
  return splits


def slice_rows(tree, splits: int, i: int):
  """Slice i of `splits` of every array in `tree` (leading batch axis): rows i, i + splits,
  i + 2 splits, ..."""
  return jax.tree.map(lambda x: x.reshape(-1, splits, *x.shape[1:])[:, i], tree)


def join_rows(slices: list):
  """The inverse of slice_rows for i = 0 .. splits - 1: the slices' rows interleaved back
  into the original order."""
  def join(*xs):
    stacked = jnp.stack(xs, axis=1)
    return stacked.reshape(-1, *stacked.shape[2:])
  return jax.tree.map(join, *slices)


def _merge(trees: list):
  """Per-slice outputs -> one: scalars are averaged (they must be means over rows), arrays
  with a batch axis joined back into the original row order."""
  def merge(*xs):
    return sum(xs) / len(xs) if jnp.ndim(xs[0]) == 0 else join_rows(list(xs))
  return jax.tree.map(merge, *trees)


def value_and_grad(fun: Callable, splits: int, has_aux: bool = False) -> Callable:
  """`jax.value_and_grad(fun, has_aux=has_aux)` of `fun(params, rows, key=None)`, evaluated as
  `splits` independent slices of `rows` (a pytree of arrays with a leading batch axis).

  Returns f(params, rows, key=None) -> (loss[, aux]), grads. The loss and gradients are the
  mean over slices; aux is merged as in `_merge`. `fun` gets `key` folded in with the slice
  index when splits > 1, and unchanged when splits == 1 (then this is jax.value_and_grad).
  """
  grad_fn = jax.value_and_grad(fun, has_aux=has_aux)

  def split_fn(params, rows, key=None):
    if splits == 1:
      return grad_fn(params, rows, key)
    outs = [grad_fn(params, slice_rows(rows, splits, i),
                    None if key is None else jax.random.fold_in(key, i))
            for i in range(splits)]
    values = _merge([value for value, _ in outs])
    grads = jax.tree.map(lambda *g: sum(g) / splits, *[g for _, g in outs])
    return values, grads
  return split_fn


def from_config(config: Any, cpu_splits: int, key: str = 'batch_split') -> int:
  """config.<key> resolved against the config's batch size per device."""
  rows = int(config.batch_size) // max(1, jax.device_count())
  return resolve(config.get(key, 'auto'), rows, cpu_splits, key)
