"""Class visualisation of the ten digits (Simonyan, Vedaldi & Zisserman 2014, Eq. 1) through
genlab's MNIST digit classifier (genlab/pretrained/digit_classifier.py, trained on first use),
genlab/methods/class_visualization.py.

Ten 28x28 images, one per digit, optimised as one batch: each ascends its digit's pre-softmax
score minus an L2 and a total-variation penalty, with two pixels of random jitter per step;
Adam on the pixels from black plus a little noise. result.png is the grid of the ten.
  python run.py --config configs/class_visualization_mnist.py --workdir runs/cv_mnist
  python run.py --config configs/class_visualization_mnist.py:smoke   # the smoke classifier
Measured here (2-core CPU, shared): 13 s in all, 2.6 s of it training (200 steps, the
classifier already trained). Every image is its digit's top class: mean_prob 0.99999999, the
lowest prob_1 = 0.9999999, S_c 25..57. result.png: the strokes of each digit (0, 1, 3, 6, 7,
8, 9 plainly; 2, 4, 5 partly) over a black ground, with short dashes the classifier also likes.
"""
from genlab import config_defaults


def get_config(arg=None):
  arg = config_defaults.parse_arg(arg, smoke=False)
  c = config_defaults.base_config()
  c.method = 'class_visualization'
  c.dataset = 'none'               # the network is the only input
  c.network = dict(name='digit_classifier', classifier_arg='', classifier_workdir='')
  c.classes = tuple(range(10))
  c.class_names = ()
  c.image_size = 28                # the classifier's input size
  c.scales = dict(num=1, factor=2.0)
  c.init = dict(mean=0.0, noise=0.05)
  c.jitter = 2
  c.transform = dict(scale=0.0, rotate=0.0)
  c.blur = dict(every=0, sigma=0.5)
  c.loss = dict(l2_weight=0.05, tv_weight=0.2)
  c.optimizer = dict(name='adam', learning_rate=0.02, b1=0.9, b2=0.999)
  config_defaults.set_schedule(c, batch_size=1, num_train_steps=200, log_every=20,
                               eval_every=50, checkpoint_every=100)
  if arg.smoke:
    c.network.classifier_arg = 'smoke'
    config_defaults.set_schedule(c, batch_size=1, num_train_steps=4, log_every=2,
                                 eval_every=2, checkpoint_every=2)
  return c
