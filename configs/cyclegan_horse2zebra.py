"""CycleGAN horse <-> zebra (Zhu et al. 2017, Fig. 1 and 13) from the TFDS catalogue
`cycle_gan/horse2zebra` (trainA 1,067 horses, trainB 1,334 zebras, testA 120, testB 140).

The paper's recipe: 256x256, ResNet generator of 9 blocks, 70x70 PatchGAN (3 layers), instance
norm, LSGAN, cycle weights 10, identity 0.5 x 10, pool of 50, batch 1, Adam 2e-4 (b1 0.5),
100 epochs at the constant rate then 100 of linear decay to 0 (200 x 1,334 steps), jitter by
resizing to 286 and cropping 256, random flips.

Needs a GPU and the data set prepared where there is network (TFDS needs tensorflow to build
it: `tfds build cycle_gan/horse2zebra --file_format=array_record`). NOT RUN HERE: tested only
tiny under TFDS's mocking. The paper reports no FID for it; compare samples with Fig. 13.

  python run.py --config configs/cyclegan_horse2zebra.py
  python run.py --config configs/cyclegan_horse2zebra.py:smoke    # tiny, for tests
"""
import ml_collections

from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.cyclegan_config()
  c.method = 'cyclegan'
  c.dataset = 'domains'
  for domain, letter in (('a', 'A'), ('b', 'B')):
    d = c.data.domains[domain]
    d.dataset = 'cycle_gan/horse2zebra'
    d.train_split, d.eval_split, d.test_split = f'train{letter}', f'test{letter}', f'test{letter}'
    d.image_size = 256
  config_defaults.set_schedule(c, 1, 266_800, log_every=500, eval_every=13_340,
                               checkpoint_every=6_670)
  c.model.update(g_features=64, g_blocks=9, g_downsampling=2, d_features=64, d_layers=3)
  c.loss = dict(cycle_weight_a=10.0, cycle_weight_b=10.0, identity_weight=0.5, pool_size=50,
                semantic_weight=0.0, cycle_noise=0.0,   # the paper's: neither
                semantic_classifier=ml_collections.FieldReference(None, field_type=str))
  c.augment = dict(load_size=286, flip=True)
  for section in ('g_optimizer', 'd_optimizer'):
    c[section] = dict(name='adam', learning_rate=2e-4, b1=0.5, b2=0.999,
                      schedule='linear_decay', decay_steps=133_400)
  c.eval.batch_size = 8
  if arg.smoke:
    config_defaults.cyclegan_smoke(c)
    for domain in ('a', 'b'):
      c.data.domains[domain].image_size = 16
    c.augment.load_size = 18
  return c
