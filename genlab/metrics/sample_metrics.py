"""The evaluator of sample quality for any generative method, run by the trainer.

At each eval (on data.eval_split) and at the end (on data.test_split) the trainer draws
samples with the method's `sample` and calls `SampleMetrics.evaluate`. Features and class
probabilities come from genlab's own digit classifier (genlab/pretrained/digit_classifier.py:
configs/classifier_mnist.py[:eval.classifier_arg], trained into eval.classifier_workdir first
when it is missing; by default into the genlab cache, $GENLAB_CACHE/pretrained/classifier_mnist),
the in-domain stand-in for Inception. Names (config.eval.sample_metrics / test_sample_metrics):

  fid               Frechet distance of classifier features, samples vs the split
  classifier_score  exp E KL(p(y|x) || p(y)), the Inception-score analogue (and its std)
  coverage          classes predicted for at least one sample (modes, coverage) and the KL
                    of the predicted-class histogram from the split's label frequencies
  precision_recall  Kynkaanniemi et al. 2019, k = eval.precision_recall_k, equal set sizes
  parzen            Goodfellow et al. 2014 Gaussian-window log-likelihood in pixel space:
                    sigma by cross-validation on data.eval_split, mean and standard error on
                    data.test_split (final evaluation only)
  fid_vgg16         for natural images, where the digit classifier does not apply: FID and
  kid_vgg16         KID (Binkowski et al. 2018, and its std over subsets) in ImageNet VGG16
                    features (genlab/metrics/vgg_features.py, images resized to
                    eval.vgg_feature_size); not Inception's, so not comparable with papers'
  cas               Classification Accuracy Score (Ravuri & Vinyals 2019, Sec. 3; cas.py):
                    a new classifier of the digit classifier's recipe and step count
                    (configs/classifier_mnist.py, with eval.classifier_arg) trained on
                    eval.cas_samples samples labelled arange(n) % num_classes, the classes
                    a conditional method's `sample` draws; its accuracy on data.test_split
                    as a fraction in [0, 1], not percent. Conditional models only
                    (config.model.conditional); final evaluation only, as it trains a
                    network: ~2.5 min on a 2-core CPU, seconds with classifier_arg 'smoke'

`reference()` computes the same numbers with real training images in place of samples
(real-vs-real, train vs test split), so every figure can be read against what real data
scores with the same sample counts. Its 'cas' is the same classifier trained on the real
training images (all of them where there are fewer than eval.cas_samples: 4,000 for mnist5k)
with their own labels: what CAS of a model that draws the training data would score.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import numpy as np

from genlab import data as data_lib
from genlab import log
from genlab.errors import UserError
from genlab.methods import classifier as classifier_method
from genlab.metrics import cas as cas_lib
from genlab.metrics import parzen as parzen_lib
from genlab.metrics import sample_quality
from genlab.pretrained import digit_classifier

SAMPLE_METRICS = ('fid', 'classifier_score', 'coverage', 'precision_recall', 'parzen',
                  'fid_vgg16', 'kid_vgg16', 'cas')
# Computed at the final test evaluation only: they fit or train something of their own.
_TEST_ONLY = ('parzen', 'cas')
_NEEDS_CLASSIFIER = ('fid', 'classifier_score', 'coverage', 'precision_recall')
_NEEDS_VGG = ('fid_vgg16', 'kid_vgg16')

Draw = Callable[[int], np.ndarray]  # n -> float32 images (n, H, W, C) in [0, 1]
Labels = Callable[[int], np.ndarray]  # n -> int32 (n,): the classes of draw(n)'s rows


def _names(config, key):
  names = tuple(config.get('eval', {}).get(key, ()) or ())
  unknown = sorted(set(names) - set(SAMPLE_METRICS))
  if unknown:
    raise UserError(f'config.eval.{key} has unknown metrics {unknown}: choose from '
                    f'{list(SAMPLE_METRICS)}.')
  return names


class SampleMetrics:
  """Real-data features, the classifier, and the metric computations of one config."""

  def __init__(self, config, data_info):
    self.config = config
    self.data_info = data_info
    self.eval_names = tuple(n for n in _names(config, 'sample_metrics') if n not in _TEST_ONLY)
    self.test_names = _names(config, 'test_sample_metrics')
    ev = config.eval
    self.num_samples = int(ev.get('num_metric_samples', 4000))
    self.parzen_samples = int(ev.get('parzen_samples', 10_000))
    self.cas_samples = int(ev.get('cas_samples', 10_000))
    self.k = int(ev.get('precision_recall_k', 3))
    if (self.num_samples < 2 or self.parzen_samples < 1 or self.cas_samples < 1
        or self.k < 1):
      raise UserError('config.eval.num_metric_samples must be >= 2, eval.parzen_samples, '
                      'eval.cas_samples and eval.precision_recall_k >= 1.')
    asked = set(_names(config, 'sample_metrics') + self.test_names)
    if 'cas' in asked and not config.get('model', {}).get('conditional', False):
      raise UserError("Sample metric 'cas' trains a classifier on class-conditional samples, "
                      'but config.model.conditional is not True: use a conditional config '
                      '(e.g. configs/cgan_mnist.py or --config.model.conditional=True), or '
                      "remove 'cas' from config.eval.test_sample_metrics and sample_metrics.")
    self._classifier = None
    self._vgg = None
    self._images: dict[str, np.ndarray] = {}
    self._labels: dict[str, np.ndarray] = {}
    self._features: dict[str, tuple] = {}

  @property
  def enabled(self) -> bool:
    return bool(self.eval_names or self.test_names)

  # -- inputs --------------------------------------------------------------------------------
  def prepare(self) -> None:
    """Loads (or first trains) the classifier and the VGG16 weights, and reads CAS's
    classifier recipe, so a bad setup fails before training."""
    if set(self.eval_names + self.test_names) & set(_NEEDS_CLASSIFIER):
      self.classifier  # pylint: disable=pointless-statement
    if set(self.eval_names + self.test_names) & set(_NEEDS_VGG):
      self.vgg  # pylint: disable=pointless-statement
    if 'cas' in self.test_names:
      self.cas_recipe  # pylint: disable=pointless-statement

  @property
  def classifier(self):
    if self._classifier is None:
      ev = self.config.eval
      self._classifier = digit_classifier.load(
          ev.get('classifier_arg', '') or None, workdir=ev.get('classifier_workdir', '') or None,
          data_dir=self.config.get('data_dir'))
      want, have = tuple(self._classifier.image_shape), tuple(self.data_info.image_shape)
      if want != have:
        raise UserError(
            f'The metric classifier in {self._classifier.workdir} takes {want} images but data '
            f"set '{self.data_info.name}' has {have}: the classifier-based metrics are for "
            'digits; set --config.eval.sample_metrics=() and test_sample_metrics=() (or '
            "('parzen',)), or point eval.classifier_workdir at a classifier of this data.")
    return self._classifier

  def real_images(self, role: str) -> np.ndarray:
    """All images of the train/eval/test split as float32 in [0, 1], never binarized."""
    if role not in self._images:
      config = self.config.copy_and_resolve_references()
      with config.unlocked():
        config.data.binarize = 'none'
      split = data_lib.settings(config)['splits'][role]
      batches = list(data_lib.eval_batches(config, split, 500))
      self._images[role] = np.concatenate([b['image'][b['mask'] > 0] for b in batches])
      self._labels[role] = np.concatenate([b['label'][b['mask'] > 0] for b in batches])
    return self._images[role]

  def real_labels(self, role: str) -> np.ndarray:
    """The int32 labels of real_images(role)."""
    self.real_images(role)
    return self._labels[role]

  def label_frequencies(self, role: str) -> np.ndarray:
    counts = np.bincount(self.real_labels(role), minlength=self.classifier.num_classes)
    return counts / counts.sum()

  def _real_features(self, role: str):
    if role not in self._features:
      self._features[role] = self.classifier.embed(self.real_images(role))
    return self._features[role]

  @property
  def vgg(self):
    if self._vgg is None:
      from genlab.metrics import vgg_features  # pylint: disable=g-import-not-at-top
      self._vgg = vgg_features.VGGFeatures(int(self.config.eval.get('vgg_feature_size', 224)))
    return self._vgg

  def _vgg_metrics(self, names, fake_images, role):
    if ('vgg', role) not in self._features:
      self._features[('vgg', role)] = self.vgg.embed(self.real_images(role)[:self.num_samples])
    real, fake = self._features[('vgg', role)], self.vgg.embed(fake_images)
    out = {}
    if 'fid_vgg16' in names:
      out['fid_vgg16'] = sample_quality.fid(fake, real)
    if 'kid_vgg16' in names:
      out['kid_vgg16'], out['kid_vgg16_std'] = sample_quality.kid(fake, real)
    return out

  # -- metrics -------------------------------------------------------------------------------
  def _classifier_metrics(self, names, fake_images, role):
    out = {}
    feats, probs = self.classifier.embed(fake_images)
    real_feats, _ = self._real_features(role)
    if 'fid' in names:
      out['fid'] = sample_quality.fid(feats, real_feats)
    if 'classifier_score' in names:
      mean, std = sample_quality.classifier_score(probs)
      out['classifier_score'], out['classifier_score_std'] = mean, std
    if 'coverage' in names:
      cov = sample_quality.class_coverage(probs, self.label_frequencies(role))
      out.update(modes=cov['modes'], coverage=cov['coverage'], class_kl=cov['kl_to_reference'])
    if 'precision_recall' in names:
      n = min(len(feats), len(real_feats))  # equal set sizes, as Kynkaanniemi et al. use
      pr = sample_quality.precision_recall(real_feats[:n], feats[:n], k=self.k)
      out.update(precision=pr['precision'], recall=pr['recall'])
    return {k: float(v) for k, v in out.items()}

  @functools.cached_property
  def cas_recipe(self):
    """The config of the classifier that CAS trains, checked against this data set."""
    recipe = digit_classifier.recipe(self.config.eval.get('classifier_arg', '') or None)
    classifier_method.build_model(recipe, self.data_info)
    return recipe

  def _cas(self, samples, labels) -> dict[str, float]:
    return {'cas': cas_lib.accuracy(
        self.cas_recipe, samples, labels, self.real_images('test'), self.real_labels('test'),
        num_classes=self.data_info.num_classes, seed=self.config.get('seed', 0))}

  def _parzen(self, samples):
    est = parzen_lib.parzen_estimate(samples, self.real_images('eval'), self.real_images('test'))
    return {'parzen_ll': float(est['mean']), 'parzen_stderr': float(est['stderr']),
            'parzen_sigma': float(est['sigma'])}

  def evaluate(self, draw: Draw, role: str) -> dict[str, float]:
    """Metrics of the method's samples against split `role` ('eval' or 'test')."""
    # A conditional method's `sample` draws class i % K for row i (methods.sample_labels); the
    # trainer draws chunks of 1,000 rows, a multiple of the 10 digit classes.
    return self._evaluate(draw, role, lambda n: np.arange(n, dtype=np.int32)
                          % self.data_info.num_classes)

  def _evaluate(self, draw: Draw, role: str, labels: Labels) -> dict[str, float]:
    names = self.eval_names if role == 'eval' else self.test_names
    if not names:
      return {}
    out = {}
    n = max(self.num_samples, self.parzen_samples if 'parzen' in names else 0,
            self.cas_samples if 'cas' in names else 0)
    samples = draw(n)
    if set(names) & set(_NEEDS_CLASSIFIER):
      out.update(self._classifier_metrics(names, samples[:self.num_samples], role))
    if set(names) & set(_NEEDS_VGG):
      out.update(self._vgg_metrics(names, samples[:self.num_samples], role))
    if 'parzen' in names:
      out.update(self._parzen(samples[:self.parzen_samples]))
    if 'cas' in names:
      out.update(self._cas(samples[:self.cas_samples], labels(len(samples))[:self.cas_samples]))
    return out

  def reference(self) -> dict[str, float]:
    """The test metrics with real training images as the 'samples' (train vs test)."""
    train = self.real_images('train')
    if len(train) < self.num_samples:
      log.warning(f'the real-vs-real reference uses all {len(train)} training images (fewer '
                  f'than eval.num_metric_samples={self.num_samples}).')

    def draw(n):
      return train[:n]

    def labels(n):  # real images keep their own classes
      return self.real_labels('train')[:n]
    return self._evaluate(draw, 'test', labels)


def make(config, data_info) -> Optional[SampleMetrics]:
  metrics = SampleMetrics(config, data_info)
  return metrics if metrics.enabled else None
