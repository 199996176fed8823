"""genlab entry point.

  python run.py --config configs/vae_mnist.py [--workdir DIR] [--mode train|eval|sample]
"""
from absl import flags

from genlab import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (default runs/<config name>).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample'], 'What to do.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 64, '--mode=sample: how many samples.')
_OUTPUT = flags.DEFINE_string('output', None, '--mode=sample: the .npz file to write '
                              '(default WORKDIR/samples.npz).')
# Language models only (None = the config's sample.* value).
_PROMPT = flags.DEFINE_string('prompt', None, '--mode=sample: the text to continue.')
_TEMPERATURE = flags.DEFINE_float('temperature', None, '--mode=sample: softmax temperature '
                                  '(> 0; default 1.0).')
_LENGTH = flags.DEFINE_integer('length', None, '--mode=sample: tokens to generate.')
_TOP_K = flags.DEFINE_integer('top_k', None, '--mode=sample: sample among the k most likely '
                              'tokens (0 = all).')
_TOP_P = flags.DEFINE_float('top_p', None, '--mode=sample: nucleus sampling mass (1 = all).')


def main(_argv):
  cli.execute(mode=_MODE.value, workdir=_WORKDIR.value, num_samples=_NUM_SAMPLES.value,
              output=_OUTPUT.value,
              text_options={'prompt': _PROMPT.value, 'temperature': _TEMPERATURE.value,
                            'length': _LENGTH.value, 'top_k': _TOP_K.value,
                            'top_p': _TOP_P.value})


if __name__ == '__main__':
  cli.run_main(main)
