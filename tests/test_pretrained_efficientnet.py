"""EfficientNet-Lite0 with its real ImageNet weights classifies real photos; its layers are
picked by name; a converted params file that does not fit the model is refused."""
import numpy as np
import pytest

from conftest import fetched
from genlab import packages
from genlab.errors import UserError
from genlab.pretrained import efficientnet, weight_files

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE = {967, 968}  # espresso, cup
# Grace Hopper in uniform: military uniform, suit, bow tie, Windsor tie, academic gown.
HOPPER = {652, 834, 457, 906, 400}
# The Summer Palace (sklearn's china.jpg): palace, monastery, church, castle, bell cote.
CHINA = {698, 663, 497, 483, 442}


@pytest.fixture(scope='module')
def params():
  return fetched(lambda: efficientnet.load_params())


def _photos():
  """{name: (image, expected classes)}: skimage's always, sklearn's and matplotlib's when
  installed."""
  skimage_data = pytest.importorskip('skimage.data')
  photos = {'chelsea': (skimage_data.chelsea(), CATS), 'coffee': (skimage_data.coffee(), COFFEE)}
  try:
    from sklearn.datasets import load_sample_image  # pylint: disable=g-import-not-at-top
    photos['china'] = (load_sample_image('china.jpg'), CHINA)
  except ImportError:
    pass
  try:
    import matplotlib.cbook  # pylint: disable=g-import-not-at-top
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)) as im:
      photos['grace_hopper'] = (np.asarray(im.convert('RGB')), HOPPER)
  except ImportError:
    pass
  return photos


def test_real_photos_top5_and_named_layers(params):
  import jax  # pylint: disable=g-import-not-at-top
  photos = _photos()
  x = np.stack([efficientnet.preprocess(image) for image, _ in photos.values()])
  assert x.shape == (len(photos), 224, 224, 3) and 0.0 <= x.min() and x.max() <= 1.0
  model = efficientnet.EfficientNetLite0()
  # One compilation: the logits and two inner layers in the same call.
  out = jax.jit(lambda p, x: model.apply(p, x, features=('stem', 'block5', 'logits')))(params, x)
  assert out['stem'].shape == (len(photos), 112, 112, 32)
  assert out['block5'].shape == (len(photos), 28, 28, 40)
  probs = np.asarray(jax.nn.softmax(out['logits']))
  labels = efficientnet.imagenet_labels()
  assert len(labels) == 1000 and labels[281].startswith('tabby') and labels[967] == 'espresso'
  failures = []
  for (name, (_, expected)), row in zip(photos.items(), probs):
    top5 = [int(i) for i in np.argsort(-row)[:5]]
    print(name, '; '.join(f'{i} {labels[i]} {row[i]:.3f}' for i in top5))
    if not expected & set(top5):
      failures.append(f'{name}: top-5 {top5}, expected one of {sorted(expected)}')
  assert not failures, failures


def test_unknown_layer_lists_valid_names():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  model = efficientnet.EfficientNetLite0()
  with pytest.raises(UserError, match=r"no layer 'block99'.*stem, block1, .*block16, head, "
                     r'pool, logits') as e:
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, features=('block99',)),
                   jnp.zeros((1, 64, 64, 3)))
  assert '\n' not in str(e.value)


def test_params_file_of_wrong_shape_is_refused(tmp_path, monkeypatch):
  monkeypatch.setenv(packages.CACHE_ENV, str(tmp_path))
  flat = {k: np.zeros(s, np.float32) for k, s in efficientnet.param_shapes().items()}
  flat['block3/depthwise/kernel'] = np.zeros((5, 5, 1, 144), np.float32)
  cached = packages.cache_dir('pretrained', efficientnet.NPZ_NAME)
  cached.parent.mkdir(parents=True)
  weight_files.save_npz(cached, flat)
  with pytest.raises(UserError, match=r'block3/depthwise/kernel: expected \(3, 3, 1, 144\), '
                     r'got \(5, 5, 1, 144\).*Delete it'):
    efficientnet.load_params()

  del flat['block3/depthwise/kernel']
  weight_files.save_npz(cached, flat)
  with pytest.raises(UserError, match=r'block3/depthwise/kernel: expected \(3, 3, 1, 144\), '
                     'got missing'):
    efficientnet.load_params()


def test_preprocess_crops_and_scales():
  image = np.zeros((300, 400), np.uint8)
  image[:, 200:] = 255  # right half white: the centre crop keeps both halves
  x = efficientnet.preprocess(image, size=64)
  assert x.shape == (64, 64, 3) and x.dtype == np.float32
  assert x[:, :20].max() < 1e-6 and x[:, -20:].min() > 1 - 1e-6
  with pytest.raises(UserError, match='one image'):
    efficientnet.preprocess(np.zeros((2, 8, 8, 3)))
