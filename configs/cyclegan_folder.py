"""CycleGAN on your own two image folders, in the official repository's layout:

  PATH/trainA/  PATH/trainB/  PATH/testA/  PATH/testB/     (any images PIL reads)

Zhu et al. 2017's recipe at 256x256 for 3-channel photos (ResNet generator of 9 blocks, 70x70
PatchGAN, LSGAN, cycle weights 10, identity 0.5, pool of 50, batch 1, Adam 2e-4 (b1 0.5)
constant for the first half then linear decay to 0, jitter by resizing to 286 and cropping
256, random flips). Give the path and the number of steps for your data set (the paper: 200
epochs, e.g. 200 x 1,067 horse images), and set image_size lower for a quick CPU run:

  python run.py --config configs/cyclegan_folder.py:path=/data/horse2zebra
  python run.py --config configs/cyclegan_folder.py:path=/data/x,size=64 --config.num_train_steps=5000

Not run here at 256 px (a CPU needs days; the tests run it tiny on generated folders).
"""
import ml_collections

from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False, path='~/cyclegan_data', size=256)
  c = config_defaults.cyclegan_config()
  c.method = 'cyclegan'
  c.dataset = 'domains'
  for domain, letter in (('a', 'A'), ('b', 'B')):
    d = c.data.domains[domain]
    d.dataset = f'folder:{arg.path}'
    d.train_split, d.eval_split, d.test_split = f'train{letter}', f'test{letter}', f'test{letter}'
    d.image_size = arg.size
    d.channels = 3                        # gray photos in a folder are made RGB
  config_defaults.set_schedule(c, 1, 200_000, log_every=500, eval_every=10_000,
                               checkpoint_every=5_000)
  c.model.update(g_features=64, g_blocks=9 if arg.size >= 256 else 6, g_downsampling=2,
                 d_features=64, d_layers=3)
  c.loss = dict(cycle_weight_a=10.0, cycle_weight_b=10.0, identity_weight=0.5, pool_size=50,
                semantic_weight=0.0, cycle_noise=0.0,   # the paper's: neither
                semantic_classifier=ml_collections.FieldReference(None, field_type=str))
  c.augment = dict(load_size=arg.size * 286 // 256, flip=True)
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999,
                      schedule='linear_decay', decay_steps=100_000)
  c.eval.batch_size = 8
  if arg.smoke:
    config_defaults.cyclegan_smoke(c)
    for domain in ('a', 'b'):
      c.data.domains[domain].image_size = 16
    c.augment.load_size = 18
  return c
