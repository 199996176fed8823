"""Metrics as pure functions (sample quality, likelihood) plus their evaluators.

  likelihood   Gaussian KL, Bernoulli / Gaussian log-likelihoods, the IWAE bound (Burda et
               al. 2016, Eq. 8) and its streaming chunked form, an independent-pixel baseline.
  ngram        unigram and n-gram language models (interpolated modified Kneser-Ney,
               Witten-Bell), the count-based baselines of the LSTM language models.
  lpips        LPIPS v0.1 (Zhang et al. 2018) on torchvision's VGG16 / AlexNet with the
               official linear heads (genlab/pretrained/vgg.py).
  ppl          perceptual path length of a StyleGAN2 generator (Karras et al. 2019, Eq. 2-3),
               as stylegan2-ada-pytorch computes it; `python -m genlab.metrics.ppl` measures
               a workdir's latest checkpoint into WORKDIR/ppl.json.
"""
