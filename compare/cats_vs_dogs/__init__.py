"""The seed's small-data workflow on cats vs dogs, with Keras 3 (TensorFlow backend).

    python -m compare.cats_vs_dogs split SRC DST [--train 1000] [--validation 500] [--test 500]
    python -m compare.cats_vs_dogs STEP --data DST --out DIR [--epochs N] [--image-size 150]
                                        [--batch-size 20] [--weights imagenet|PATH|none]

STEP is one of

=================  =========================================================================
scratch            the small convnet (Conv 32-64-128-128, Dense 512), RMSprop 1e-4: overfits
augment            the same with the seed's augmentation as Keras 3 layers, plus Dropout 0.5
extract            VGG16 conv base run once over every image (features (n, 4, 4, 512) at 150,
                   saved in DIR/features.npz), Dense 256 + Dropout + Dense 1 on the 8,192 values
extract-augment    the frozen conv base inside a model with augmentation, trained end to end
finetune           head trained first (or loaded with --head-from), then block5 unfrozen,
                   RMSprop 1e-5
=================  =========================================================================

Each training step writes DIR/metrics.json (history, test accuracy and loss, options,
timings) and DIR/curves.png (training and validation accuracy and loss). Modules:
:mod:`.split` (no TensorFlow), :mod:`.models` (the Keras models), :mod:`.steps`.
"""
