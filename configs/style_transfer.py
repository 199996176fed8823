"""Neural style transfer (Gatys, Ecker & Bethge, CVPR 2016), genlab/methods/style_transfer.py.

The pixels of one image are optimised with L-BFGS so that its VGG16 features at relu4_2 match
the content photo's and its Gram matrices at relu1_1..relu5_1 (weights 1/5 each) match the
style photo's; average pooling, as the paper does; the optimisation starts from the content.
  python run.py --config configs/style_transfer.py --config.content=skimage:chelsea \
      --config.style=skimage:immunohistochemistry
  python run.py --config configs/style_transfer.py:smoke         # 32 px, a few steps
Measured (this 2-core CPU, CI running beside it): 300 iterations in 9 min 28 s (1.1 s each
idle), content loss 2.48e4, style loss 1.89e-4; result.png is the cat with its fur redrawn
in the stain's brown membrane strokes and blue nuclei around it.
Options: `color` ('style' | 'luminance' | 'histogram', Gatys et al. 2017), several styles
(`style=("a", "b")` with `style_weights`), `init='noise'`, `scales.num` > 1 (coarse to fine),
`optimizer.name='adam'`, `network.name='vgg19'` with `network.weights=PATH` (the paper's).
"""
import ml_collections

from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'style_transfer'
  c.dataset = 'none'               # the inputs are the photos below
  c.content = 'skimage:chelsea'
  c.style = ('skimage:immunohistochemistry',)
  c.style_weights = ()             # () = equal weights
  c.image_size = 256               # the longer side of the result, in pixels
  c.style_scale = 1.0              # the style photo's longer side, relative to image_size
  c.init = 'content'               # 'content' | 'noise'
  c.color = 'style'                # 'style' | 'luminance' | 'histogram' (Gatys et al. 2017)
  c.scales = dict(num=1, factor=2.0)
  c.network = dict(name='vgg16', pooling='avg', weights='')
  # alpha / beta = 1e-8: the paper's 1e-3 .. 1e-4 is for Caffe's VGG19 on 0..255 inputs, whose
  # features are ~60x larger than torchvision's VGG16 on [0, 1] (the Gram term grows as the
  # 4th power, the content term as the 2nd); 1e6, 1e7 and 1e8 compared by eye at 128 px.
  c.loss = dict(content_layer='relu4_2',
                style_layers=('relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'),
                style_layer_weights=(0.2, 0.2, 0.2, 0.2, 0.2),
                content_weight=1.0, style_weight=1e8, tv_weight=0.0)
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
