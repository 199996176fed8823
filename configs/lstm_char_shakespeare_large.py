"""A larger character LSTM on Shakespeare's plays, sized for a GPU (hours on this CPU).

Embedding 256 -> 3 LSTM layers of 512 -> softmax; dropout 0.2 between layers (Zaremba et al.
2014), windows of 256 with the state carried (truncated BPTT), batch 128, Adam(2e-3) with a
cosine decay over 20,000 steps, gradients clipped to norm 1. Evaluated and sampled as
configs/lstm_char_shakespeare.py.

  python run.py --config configs/lstm_char_shakespeare_large.py
  python run.py --config configs/lstm_char_shakespeare_large.py:smoke   # seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.lm_config()      # every LM key (and model.unroll / time_loop)
  c.method = 'lm'
  c.dataset = 'shakespeare'
  config_defaults.set_schedule(c, 128, 20_000, log_every=100, eval_every=2_000,
                               checkpoint_every=2_000)
  c.data.update(tokenizer='char', vocab_size=0, lowercase=False, seq_len=256, tbptt=True)
  c.model.update(embed_dim=256, hidden_dim=512, num_layers=3, dropout=0.2, tie_weights=False)
  c.optimizer = dict(name='adam', learning_rate=2e-3, schedule='cosine', grad_clip_norm=1.0)
  if arg.smoke:
    config_defaults.lm_smoke(c)
  return c


SWEEP_METRIC = 'test/bits_per_char'  # how a sweep of this config ranks trials (--sweep_grid ...)
