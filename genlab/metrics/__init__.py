"""Metrics as pure functions (sample quality, likelihood) plus their evaluators.

  likelihood   Gaussian KL, Bernoulli / Gaussian log-likelihoods, the IWAE bound (Burda et
               al. 2016, Eq. 8) and its streaming chunked form, an independent-pixel baseline.
"""
