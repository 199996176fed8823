"""genlab/batch_split.py: the gradient of independent slices equals the whole batch's, outputs
come back in row order, 'auto' chooses by backend, and a bad split is one clear error."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from genlab import batch_split
from genlab.errors import UserError


def _mlp_loss(params, rows, key=None):
  """A mean-over-rows loss with a per-row output (aux) and a scalar aux."""
  x, y = rows
  h = jnp.tanh(x @ params['w1'])
  pred = h @ params['w2']
  if key is not None:  # dropout-like noise drawn inside the loss
    pred = pred + 0.1 * jax.random.normal(key, pred.shape)
  loss = jnp.mean(jnp.square(pred - y))
  return loss, {'hidden': h, 'mean_pred': jnp.mean(pred)}


def _problem(rows=12):
  rng = np.random.default_rng(0)
  params = {'w1': jnp.asarray(rng.normal(size=(5, 7)), jnp.float32),
            'w2': jnp.asarray(rng.normal(size=(7, 3)), jnp.float32)}
  data = (jnp.asarray(rng.normal(size=(rows, 5)), jnp.float32),
          jnp.asarray(rng.normal(size=(rows, 3)), jnp.float32))
  return params, data


@pytest.mark.parametrize('splits', [2, 3, 4])
def test_slices_give_the_whole_batch_gradient_and_row_ordered_outputs(splits):
  params, data = _problem()
  (loss, aux), grads = jax.value_and_grad(_mlp_loss, has_aux=True)(params, data)
  (s_loss, s_aux), s_grads = jax.jit(batch_split.value_and_grad(_mlp_loss, splits, True))(
      params, data)
  np.testing.assert_allclose(s_loss, loss, rtol=1e-6)
  np.testing.assert_allclose(s_aux['hidden'], aux['hidden'], rtol=1e-5, atol=1e-6)  # rows in order
  np.testing.assert_allclose(s_aux['mean_pred'], aux['mean_pred'], rtol=1e-5, atol=1e-6)
  for name in grads:
    np.testing.assert_allclose(s_grads[name], grads[name], rtol=1e-5, atol=1e-6)


def test_one_split_is_value_and_grad_and_keys_differ_per_slice():
  params, data = _problem()
  key = jax.random.key(3)
  one = batch_split.value_and_grad(_mlp_loss, 1, True)(params, data, key)
  ref = jax.value_and_grad(_mlp_loss, has_aux=True)(params, data, key)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(ref)):
    np.testing.assert_array_equal(a, b)
  # Each slice draws its own noise: the same key on every slice would repeat it.
  def noise(params, rows, key):
    return jnp.mean(params['w1']), jax.random.normal(key, rows[0].shape)
  (_, draws), _ = batch_split.value_and_grad(noise, 2, True)(params, data, key)
  assert not np.allclose(draws[0::2], draws[1::2])


@pytest.mark.parametrize('backend,rows,expected', [('cpu', 64, 4), ('cpu', 6, 2), ('cpu', 5, 1),
                                                   ('gpu', 64, 1), ('tpu', 64, 1)])
def test_auto_splits_on_the_cpu_only(monkeypatch, backend, rows, expected):
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  assert batch_split.resolve('auto', rows, cpu_splits=4) == expected
  assert batch_split.resolve(2, 64, cpu_splits=4) == 2  # an explicit choice holds everywhere


@pytest.mark.parametrize('splits,words', [(3, ('batch_split=3', 'divisor of 64')),
                                          (0, ('batch_split=0', 'positive integer')),
                                          ('four', ("batch_split='four'", "'auto'"))])
def test_a_bad_split_is_one_clear_error(splits, words):
  with pytest.raises(UserError) as e:
    batch_split.resolve(splits, 64, cpu_splits=4)
  for word in words:
    assert word in str(e.value)
