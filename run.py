"""genlab entry point: python run.py --config configs/vae_mnist.py [--workdir DIR] [--mode ...]."""
from genlab import cli

if __name__ == '__main__':
  cli.main()
