"""DeepDream (Mordvintsev, Olah & Tyka 2015, "Inceptionism"), genlab/methods/deepdream.py.

Gradient ascent on the mean squared activation of VGG16's relu4_3 (max pooling, as trained)
over 4 octaves of the photo (each 1.4 times the one before, detail reinjected), as the
reference dream.ipynb does: each step rolls the image by up to 32 pixels of random jitter,
steps by 0.01 of the pixel range along g / mean|g| and clips to [0, 1].
  python run.py --config configs/deepdream.py --workdir runs/deepdream
  python run.py --config configs/deepdream.py:smoke --workdir /tmp/dd   # 48 px, 4 steps
Options: `image` (a path or a named photo, e.g. sklearn:china.jpg), `layers` and
`layer_weights` (any of VGG16's conv/relu/pool names; EfficientNet-Lite0's stem, block1..16,
head, pool, logits with `network.name='efficientnet_lite0'`), `loss.kind='mean'`, `tile_size`
(octaves larger than this are evaluated in overlapping tiles; 0 never tiles).
Measured here (2-core CPU, shared, load 2-3): 2 min 45 s in all, 140 s of it training (80
steps, ~1.8 s a step at the last octave's 320x216; 4 min 8 s under heavier load). F at each
octave's start -> end: 7.3 -> 222 (gain_octave_0 30.3), 60.4 -> 312 (5.2), 60.7 -> 337 (5.6),
60.2 -> 381 (6.3). result.png: the cat turned into dog faces, eyes and fur swirls, the
Inceptionism look; analysis/octaves.png shows the four octaves side by side.
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'deepdream'
  c.dataset = 'none'               # the input is the photo below
  c.image = 'skimage:chelsea'
  c.image_size = 320               # the longer side of the last octave, in pixels
  c.network = dict(name='vgg16', pooling='max')
  c.layers = ('relu4_3',)
  c.layer_weights = (1.0,)
  c.loss = dict(kind='mean_square')  # 'mean_square' | 'mean'
  c.octaves = dict(num=4, scale=1.4)
  c.jitter = 32                    # pixels of random roll per step; 0 = none
  c.tile_size = 512                # octaves larger than this are tiled; 0 = never
  c.optimizer = dict(name='normalized_sgd', learning_rate=0.01)
  config_defaults.set_schedule(c, batch_size=1, num_train_steps=80, log_every=10,
                               eval_every=20, checkpoint_every=20)
  if arg.smoke:
    c.image_size = 48
    c.octaves.num = 2
    c.jitter = 4
    config_defaults.set_schedule(c, batch_size=1, num_train_steps=4, log_every=2,
                                 eval_every=2, checkpoint_every=2)
  return c
