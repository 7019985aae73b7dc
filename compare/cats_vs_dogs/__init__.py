"""The book's small-data workflow (sections 5.2-5.3, cats vs dogs) in minicnn, in Keras 3
(TensorFlow backend), or both side by side.

    python -m compare.cats_vs_dogs split SRC DST [--train 1000] [--validation 500] [--test 500]
    minicnn data mnist --export DST [--names cats dogs] [--size 150]   # real images, offline
    python -m compare.cats_vs_dogs STEP --data DST --out DIR [--engine minicnn|keras|both]
                                        [--epochs N] [--image-size 150] [--batch-size 20]
                                        [--steps-per-epoch N] [--weights imagenet|PATH|none]

STEP is one of

=================  =========================================================================
scratch            the small convnet (Conv 32-64-128-128, Dense 512), RMSprop 1e-4: overfits
augment            the same with the book's augmentation and Dropout 0.5
extract            the VGG16 conv base run once over every image (features (n, 4, 4, 512) at
                   150, saved in DIR/features_ENGINE.npz), Dense 256 + Dropout + Dense 1 on
                   the 8,192 values
extract-augment    the frozen conv base inside a model with augmentation, trained end to end
finetune           head trained first (or loaded with --head-from), then block5 unfrozen,
                   RMSprop 1e-5
=================  =========================================================================

Side by side means: one folder; one model built by minicnn and copied to Keras with
:func:`minicnn.interop.keras.to_keras` (the same starting weights); one batch stream made
by minicnn's ``ImageDataGenerator`` (rescaling, VGG16 preprocessing and augmentation
happen there), whose every epoch is drawn once and given to both engines in the same
order. What still differs is each engine's arithmetic (float32 round-off, which grows
over training) and Dropout's random masks (each engine draws its own).

Each step writes DIR/metrics.json (per engine: history, test accuracy and loss, seconds,
parameters; with both, the per-epoch gaps) and DIR/curves.png (training and validation
accuracy and loss; with both, the two engines overlaid). Modules: :mod:`.split` (no
TensorFlow), :mod:`.data` (folders and batch streams), :mod:`.models` (built in
minicnn), :mod:`.engines` (one interface to both), :mod:`.steps`, :mod:`.report`.
"""
