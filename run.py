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


def main(_argv):
  cli.execute(mode=_MODE.value, workdir=_WORKDIR.value, num_samples=_NUM_SAMPLES.value,
              output=_OUTPUT.value)


if __name__ == '__main__':
  cli.run_main(main)
