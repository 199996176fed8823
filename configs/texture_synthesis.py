"""Texture synthesis (Gatys, Ecker & Bethge, NeurIPS 2015), genlab/methods/style_transfer.py.

Style transfer without a content image: white noise is optimised with L-BFGS until its VGG16
Gram matrices at relu1_1..relu5_1 (weights 1/5 each) match those of the source photo; average
pooling, as the paper does. The result is image_size x image_size.
  python run.py --config configs/texture_synthesis.py --config.style=skimage:brick
  python run.py --config configs/texture_synthesis.py:smoke      # 32 px, a few steps
"""
import ml_collections

from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'style_transfer'
  c.dataset = 'none'               # the input is the photo below
  c.content = ''                   # no content term: a texture
  c.style = ('skimage:brick',)
  c.style_weights = ()
  c.image_size = 256               # the texture is image_size x image_size
  c.style_scale = 1.0              # the source photo's longer side, relative to image_size
  c.init = 'noise'
  c.color = 'style'
  c.scales = dict(num=1, factor=2.0)
  c.network = dict(name='vgg16', pooling='avg', weights='')
  c.loss = dict(content_layer='relu4_2',  # unused without content
                style_layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'),
                style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
                content_weight=0.0, style_weight=1.0, tv_weight=0.0)
  # learning_rate None: L-BFGS's step is its line search's (give one for adam: 0.02).
  c.optimizer = dict(name='lbfgs', memory_size=10,
                     learning_rate=ml_collections.FieldReference(None, field_type=float))
  config_defaults.set_schedule(c, batch_size=1, num_train_steps=300, log_every=10,
                               eval_every=50, checkpoint_every=50)
  if arg.smoke:
    c.image_size = 32
    config_defaults.set_schedule(c, batch_size=1, num_train_steps=6, log_every=2,
                                 eval_every=3, checkpoint_every=3)
  return c
