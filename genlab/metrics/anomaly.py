"""Anomaly detection by a score per test image, against the PCA-reconstruction baseline.

A model trained without some classes (config.data.held_out_labels) scores every test image,
e.g. by its reconstruction error or its negative ELBO; the held-out classes are the
anomalies, and the AUROC says how well the score ranks them above the classes it saw. The
baseline scores by the squared error of a PCA reconstruction fitted on the same training
images with as many components as the model's code (the linear autoencoder it generalises).
"""
from __future__ import annotations

import numpy as np

from genlab.metrics import classical


def pca_scores(train_x_NxD: np.ndarray, test_x_MxD: np.ndarray, n_components: int) -> np.ndarray:
  """Squared error of each test row's rank-`n_components` PCA reconstruction -> (M,)."""
  mean_D, comps_KxD = classical.pca_fit(train_x_NxD, n_components)
  x_hat = classical.pca_reconstruct(test_x_MxD, mean_D, comps_KxD)
  return np.sum((x_hat - test_x_MxD) ** 2, axis=1)


def report(scores: dict[str, np.ndarray], test_labels_M: np.ndarray, held_out,
           train_x_NxD: np.ndarray, test_x_MxD: np.ndarray, n_components: int
           ) -> dict[str, float]:
  """{'anomaly/auroc_<name>': ...} for each model score, and the PCA baseline's AUROC."""
  positive = np.isin(test_labels_M, tuple(held_out))
  out = {f'anomaly/auroc_{name}': classical.auroc(np.asarray(s, np.float64), positive)
         for name, s in scores.items()}
  pca = pca_scores(train_x_NxD.astype(np.float64), test_x_MxD.astype(np.float64), n_components)
  out['baseline/pca/anomaly_auroc'] = classical.auroc(pca, positive)
  out['anomaly/fraction_anomalous'] = float(np.mean(positive))
  return out
