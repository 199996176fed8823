"""Character-level LSTM language model on Shakespeare's plays (held-out plays for test).

Embedding 128 -> 2 LSTM layers of 256 -> softmax over the 84 characters of the train plays;
windows of 128 characters with the state carried across windows (truncated BPTT), batch 64,
Adam(3e-3) with a cosine decay over 1,500 steps, gradients clipped to norm 1. Evaluated in bits
per character on the held-out plays, beside unigram..6-gram baselines (Kneser-Ney, Witten-Bell)
fitted by genlab on the same train plays; samples at temperatures 0.2, 0.5, 1.0 and 1.2.

  python run.py --config configs/lstm_char_shakespeare.py
  python run.py --config configs/lstm_char_shakespeare.py --mode=sample --num_samples=1 \\
      --prompt='ROMEO.' --temperature=0.5 --length=500
  python run.py --config configs/lstm_char_shakespeare.py --config.dataset=text:my_corpus/
  python run.py --config configs/lstm_char_shakespeare.py:smoke   # seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.lm_config()      # every LM key (and model.unroll / time_loop)
  c.method = 'lm'
  c.dataset = 'shakespeare'
  config_defaults.set_schedule(c, 64, 1_500, log_every=50, eval_every=500, checkpoint_every=500)
  c.data.update(tokenizer='char', vocab_size=0, lowercase=False, seq_len=128, tbptt=True)
  c.model.update(embed_dim=128, hidden_dim=256, num_layers=2, dropout=0.0, tie_weights=False)
  c.optimizer = dict(name='adam', learning_rate=3e-3, schedule='cosine', grad_clip_norm=1.0)
  if arg.smoke:
    config_defaults.lm_smoke(c)
  return c


SWEEP_METRIC = 'test/bits_per_char'  # how a sweep of this config ranks trials (--sweep_grid ...)
