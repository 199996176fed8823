"""Tests for genlab/optim.py: optimizers and schedules from the config."""
import jax.numpy as jnp
import ml_collections
import numpy as np

from genlab import optim


def test_burda_schedule_over_3280_steps_is_the_papers():
  schedule = optim.burda_schedule(1e-3, 3280)
  starts = [0, 1, 4, 13, 40, 121, 364, 1093]                 # cumulative 3^i passes
  for i, start in enumerate(starts):
    np.testing.assert_allclose(schedule(start), 1e-3 * 10 ** (-i / 7), rtol=1e-5)
    if start:
      np.testing.assert_allclose(schedule(start - 1), 1e-3 * 10 ** (-(i - 1) / 7), rtol=1e-5)
  np.testing.assert_allclose(optim.burda_schedule(1e-3, 10)(9), 1e-4, rtol=1e-5)  # merged stages


def test_optimizer_from_config():
  config = ml_collections.ConfigDict({'num_train_steps': 120, 'optimizer': dict(
      name='adam', learning_rate=1e-2, b1=0.9, b2=0.999, eps=1e-4, schedule='cosine',
      grad_clip_norm=1.0)})
  tx, schedule = optim.make_optimizer(config)
  np.testing.assert_allclose(schedule(config.num_train_steps), 0.0, atol=1e-9)
  params = {'w': jnp.ones(3)}
  updates, _ = tx.update({'w': jnp.full(3, 100.0)}, tx.init(params), params)
  assert np.all(np.isfinite(updates['w']))


def test_warmup_rises_linearly_then_hands_over_to_the_schedule():
  c = ml_collections.ConfigDict(dict(num_train_steps=1100, optimizer=dict(
      name='adam', learning_rate=1e-3, schedule='cosine', warmup_steps=100)))
  _, schedule = optim.make_optimizer(c)
  np.testing.assert_allclose([schedule(0), schedule(50), schedule(100)], [0, 5e-4, 1e-3],
                             rtol=1e-6)
  # The cosine decay spans the 1,000 steps after the warm-up: half-way at step 600, 0 at 1100.
  np.testing.assert_allclose([schedule(600), schedule(1100)], [5e-4, 0], atol=1e-9)
