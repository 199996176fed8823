r"""PyTorch CPU reference: ms per character-LSTM training step (configs/lstm_char_shakespeare.py).

Why: a yardstick for genlab's JAX language-model step (genlab/methods/lm.py,
genlab/models/lstm.py) on the same CPU (`python -m genlab.bench --config
configs/lstm_char_shakespeare.py`). Plain eager PyTorch, float32,
torch.set_num_threads(<cores>), no compilation.

The network, as a PyTorch user writes it (Zaremba et al. 2014's model without dropout):
  tokens (B,T) -> Embedding(84, 128) -> torch.nn.LSTM(128, 256, num_layers=2,
  batch_first=True) -> Linear(256, 84) -> logits (B,T,84).
torch.nn.LSTM is the fused multi-layer LSTM: cuDNN's on a GPU; on the CPU (float32, torch 2.x)
oneDNN's RNN primitive, one call per layer for the whole window, forward and backward
(aten::mkldnn_rnn_layer in torch.profiler). Its gates are those of genlab's flax
OptimizedLSTMCell (i, f, g, o; c' = s(f) c + s(i) tanh(g), h' = s(o) tanh(c')); torch has two
bias vectors per layer (b_ih + b_hh) where flax has one (4H more parameters, the same function).
One step (truncated BPTT, Williams & Peng 1990): rows whose `reset` flag is set start from a
zero state, the others from the state at the end of the previous window (detached);
loss = cross-entropy over all B x T next-character targets (mean, nats per character);
gradients clipped to global norm 1; Adam(lr=3e-3, betas=(0.9, 0.999), eps=1e-8) with the
config's cosine decay over its 1,500 steps. Batch 64 windows of 128 characters. Data are a
fixed batch of random token ids (no row reset): the step's cost does not depend on them.
genlab's step also returns its metrics (grad norm, bits per character); here the grad norm
comes out of the clipping and only the loss is read back (`.item()`, which waits for the step).

torch is NOT a genlab requirement; install it separately (requirements-bench.txt), e.g. the
CPU-only wheel:
  pip install torch --index-url https://download.pytorch.org/whl/cpu
Run:
  python benchmarks/torch_lstm.py --batch_size=64 --steps=20 --output=/tmp/torch_lstm.json
"""
import math

import numpy as np
from absl import app

# configs/lstm_char_shakespeare.py (tests/test_torch_peers.py checks that they agree); the
# vocabulary is the 84 characters of the train plays.
VOCAB_SIZE, EMBED_DIM, HIDDEN_DIM, NUM_LAYERS = 84, 128, 256, 2
SEQ_LEN = 128
LEARNING_RATE, BETAS, EPS = 3e-3, (0.9, 0.999), 1e-8
GRAD_CLIP_NORM = 1.0
NUM_TRAIN_STEPS = 1_500  # the length of the cosine decay
_GATES = ('i', 'f', 'g', 'o')  # torch.nn.LSTM's order of the 4H rows of its weights


def _define_flags():
  """The script's flags, defined only when it runs as a script: the tests import build()
  into one process with other benchmark scripts whose flags share these names."""
  # pylint: disable=global-statement
  global _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE
  import torch_timing  # pylint: disable=g-import-not-at-top
  _BATCH, _STEPS, _WARMUP, _THREADS, _OUTPUT, _PASSIVE = torch_timing.define_flags(
      64, 'Windows per batch (the config\'s is 64).', steps=20, warmup=3)


def build(torch, vocab_size=VOCAB_SIZE, embed_dim=EMBED_DIM, hidden_dim=HIDDEN_DIM,
          num_layers=NUM_LAYERS):
  """The language model: forward(tokens (B,T), (h, c) each (L,B,H)) -> (logits, (h, c)).

  Also imported by tests/test_torch_peers.py to check it against genlab's modules.
  """
  nn = torch.nn

  class LSTMLanguageModel(nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab_size, embed_dim)
      self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
      self.output = nn.Linear(hidden_dim, vocab_size)

    def zero_state(self, batch_size):
      zeros = torch.zeros(num_layers, batch_size, hidden_dim)
      return zeros, zeros.clone()

    def forward(self, tokens, state):
      out, state = self.lstm(self.embed(tokens), state)
      return self.output(out), state

  return LSTMLanguageModel()


def cross_entropy(torch, logits, targets):
  """Mean next-token cross-entropy in nats, as genlab's loss_fn (optax's, averaged)."""
  return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           targets.reshape(-1))


def cosine_decay(step, total=NUM_TRAIN_STEPS):
  """optax.cosine_decay_schedule's factor at `step` (genlab/optim.py, schedule='cosine')."""
  return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def load_flax(torch, net, params):
  """Copies genlab's LSTMLanguageModel parameters (flax; tie_weights=False) into `net`.

  flax's OptimizedLSTMCell keeps one Dense per gate: ii, if, ig, io (input, kernel (in, H), no
  bias) and hi, hf, hg, ho (recurrent, kernel (H, H), with the bias). torch.nn.LSTM stacks the
  gates i, f, g, o as rows: weight_ih_l{k} (4H, in), weight_hh_l{k} (4H, H), and adds two
  biases; the recurrent bias goes to bias_hh and bias_ih is zero.
  """
  t = lambda a: torch.tensor(np.asarray(a))  # a copy: flax's arrays are read-only
  with torch.no_grad():
    net.embed.weight.copy_(t(np.asarray(params['embed']['embedding'])))
    for layer in range(net.lstm.num_layers):
      p = params[f'lstm_{layer}']  # the same names for every time_loop
      w_ih = np.concatenate([np.asarray(p[f'i{g}']['kernel']) for g in _GATES], axis=1)
      w_hh = np.concatenate([np.asarray(p[f'h{g}']['kernel']) for g in _GATES], axis=1)
      b_hh = np.concatenate([np.asarray(p[f'h{g}']['bias']) for g in _GATES])
      getattr(net.lstm, f'weight_ih_l{layer}').copy_(t(w_ih.T))
      getattr(net.lstm, f'weight_hh_l{layer}').copy_(t(w_hh.T))
      getattr(net.lstm, f'bias_hh_l{layer}').copy_(t(b_hh))
      getattr(net.lstm, f'bias_ih_l{layer}').zero_()
    net.output.weight.copy_(t(np.asarray(params['output']['kernel']).T))
    net.output.bias.copy_(t(np.asarray(params['output']['bias'])))


def state_from_carry(torch, carry):
  """genlab's carry ((c, h) per layer, each (B, H)) -> torch's (h, c), each (L, B, H)."""
  h = torch.stack([torch.tensor(np.asarray(layer[1])) for layer in carry])
  c = torch.stack([torch.tensor(np.asarray(layer[0])) for layer in carry])
  return h, c


def make_step(torch, batch_size, seq_len=SEQ_LEN):
  """step() -> loss: one training step of a new network and Adam on a fixed batch, the state
  carried from the previous call, waited for. Also what benchmarks/peers.py times."""
  b = batch_size
  net = build(torch)
  net.train()
  opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPS)
  sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine_decay)
  inputs = torch.randint(0, VOCAB_SIZE, (b, seq_len))
  targets = torch.randint(0, VOCAB_SIZE, (b, seq_len))
  reset = torch.zeros(b)
  carried = [net.zero_state(b)]

  def step():
    keep = (1.0 - reset)[None, :, None]  # rows that start a new stream start from zero
    state = tuple(s * keep for s in carried[0])
    opt.zero_grad(set_to_none=True)
    logits, state = net(inputs, state)
    loss = cross_entropy(torch, logits, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), GRAD_CLIP_NORM)
    opt.step()
    sched.step()
    carried[0] = tuple(s.detach() for s in state)  # truncated BPTT: carried, not differentiated
    return loss.item()

  return step


def main(argv):
  del argv
  import torch_timing  # pylint: disable=g-import-not-at-top
  torch = torch_timing.import_torch(_PASSIVE.value, _THREADS.value)
  b = _BATCH.value
  timing = torch_timing.time_steps(make_step(torch, b), _WARMUP.value, _STEPS.value)
  torch_timing.report(torch, timing, f'LSTM batch={b}x{SEQ_LEN}', _OUTPUT.value,
                      per_step=b * SEQ_LEN, unit='tokens',
                      config='configs/lstm_char_shakespeare.py', batch_size=b, seq_len=SEQ_LEN,
                      vocab_size=VOCAB_SIZE, embed_dim=EMBED_DIM, hidden_dim=HIDDEN_DIM,
                      num_layers=NUM_LAYERS)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
