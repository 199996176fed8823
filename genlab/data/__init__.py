"""genlab's data layer: offline TFDS builders and deterministic, shardable pipelines.

Importing this package registers the offline builders (`mnist5k`, `digits`, `shakespeare`) with
TFDS, so `tfds.builder('mnist5k')` and `tfds.data_source('mnist5k', ...)` work anywhere after it.
TFDS catalogue sets (`cifar10`, `celeb_a`, ...) are read where the user has prepared them;
config.data.center_crop / image_size crop and resize the images once, when a split is decoded.
"""
from genlab.data.builders import OFFLINE_BUILDERS
from genlab.data.pipeline import (NO_DATA, TrainIterator, eval_batches, get_info, held_out_labels,
                                  is_data_free, settings, split_arrays, train_iterator,
                                  train_pixel_mean)
from genlab.data.source import DataInfo, clear_cache, crop_and_resize
from genlab.data import text_sources  # noqa: F401  Registers the `shakespeare` builder.
from genlab.data.text import (Tokenizer, check_vocabulary, encode_prompt, is_text_dataset,
                              save_vocabulary)

__all__ = ['NO_DATA', 'OFFLINE_BUILDERS', 'DataInfo', 'Tokenizer', 'TrainIterator',
           'check_vocabulary', 'clear_cache', 'crop_and_resize', 'encode_prompt', 'eval_batches',
           'get_info', 'held_out_labels', 'is_data_free', 'is_text_dataset', 'save_vocabulary',
           'settings', 'split_arrays', 'train_iterator', 'train_pixel_mean']
