"""Word-level LSTM language model on Shakespeare's plays, evaluated in perplexity.

Tokens: the 8,000 most frequent lower-cased words of the train plays, punctuation marks and
line breaks, and <unk> for the rest. Embedding 256 -> 2 LSTM layers of 256 -> softmax tied to
the embedding (Press & Wolf 2017), dropout 0.3 (Zaremba et al. 2014), windows of 64 tokens with
the state carried (truncated BPTT), batch 32, Adam(2e-3) with a cosine decay, gradients clipped
to norm 1, 1,500 steps. Test perplexity sits beside unigram..trigram baselines (Kneser-Ney,
Witten-Bell) on the same tokens.

  python run.py --config configs/lstm_word_shakespeare.py
  python run.py --config configs/lstm_word_shakespeare.py --mode=sample --num_samples=1 \\
      --prompt='the king' --temperature=0.8 --length=200
  python run.py --config configs/lstm_word_shakespeare.py:smoke   # seconds, for tests
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.lm_config()      # every LM key (and model.unroll / time_loop)
  c.method = 'lm'
  c.dataset = 'shakespeare'
  config_defaults.set_schedule(c, 32, 1_500, log_every=50, eval_every=500, checkpoint_every=500)
  c.data.update(tokenizer='word', vocab_size=8_000, lowercase=True, seq_len=64, tbptt=True)
  c.model.update(embed_dim=256, hidden_dim=256, num_layers=2, dropout=0.3, tie_weights=True)
  c.optimizer = dict(name='adam', learning_rate=2e-3, schedule='cosine', grad_clip_norm=1.0)
  c.eval.seq_len = 256
  c.eval.context = 32
  c.sample.update(prompt='\n\n', length=150)
  c.baseline.orders = (1, 2, 3)
  if arg.smoke:
    config_defaults.lm_smoke(c)
  return c


SWEEP_METRIC = 'test/perplexity'  # how a sweep of this config ranks trials (--sweep_grid ...)
