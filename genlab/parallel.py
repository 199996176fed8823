"""Data parallelism: one jit over a 1-D mesh of every local device (DESIGN.md).

State is replicated, batches are sharded on their leading axis over 'data'. Each process
feeds its own rows of the global batch with `make_array_from_process_local_data`.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from genlab import peers


def maybe_initialize_distributed() -> None:
  """Joins a multi-process run when GENLAB_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID are set,
  and watches the other processes (genlab/peers.py)."""
  address = os.environ.get('GENLAB_COORDINATOR')
  if address and not jax.distributed.is_initialized():
    jax.distributed.initialize(
        coordinator_address=address,
        num_processes=int(os.environ['GENLAB_NUM_PROCESSES']),
        process_id=int(os.environ['GENLAB_PROCESS_ID']),
        # JAX's own detection of a dead peer aborts with pages of logs: genlab's comes first.
        heartbeat_timeout_seconds=int(max(100, 3 * peers.timeout())))
    peers.start(address)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), ('data',))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def check_batch_size(global_batch: int, mesh: Mesh, what: str = 'batch_size') -> None:
  from genlab.errors import UserError
  n = mesh.devices.size
  if global_batch % n:
    raise UserError(f'config.{what}={global_batch} is not divisible by the {n} devices in use: '
                    f'set --config.{what} to a multiple of {n}.')


def to_global(batch: dict, mesh: Mesh) -> dict:
  """Process-local numpy rows -> global arrays sharded over 'data'."""
  sharding = data_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)),
                      batch)


def to_host(tree):
  """Fully replicated (or fully addressable) arrays -> numpy on every process."""
  return jax.tree.map(lambda x: np.asarray(jax.device_get(x)), tree)
