"""Image augmentation compatible with Keras 2's ``ImageDataGenerator``.

    from minicnn.preprocessing import ImageDataGenerator   # or minicnn.preprocessing.image

Modules: :mod:`.image` (the generator, channel and brightness shifts), :mod:`.affine`
(the one-pass affine warp and its fill modes), :mod:`.iterators` (``flow`` and
``flow_from_directory`` batches), :mod:`.plotting` (the augmentation figure).
"""

from minicnn.preprocessing.affine import (FILL_MODES, apply_affine_transform, flip_axis,
                                          transform_matrix_offset_center, warp_affine)
from minicnn.preprocessing.image import (ImageDataGenerator, apply_brightness_shift,
                                         apply_channel_shift)
from minicnn.preprocessing.iterators import DirectoryIterator, Iterator, NumpyArrayIterator
from minicnn.preprocessing.plotting import plot_augmented_images

__all__ = ["ImageDataGenerator", "NumpyArrayIterator", "DirectoryIterator", "Iterator",
           "apply_affine_transform", "transform_matrix_offset_center", "warp_affine",
           "flip_axis", "apply_channel_shift", "apply_brightness_shift", "FILL_MODES",
           "plot_augmented_images"]
