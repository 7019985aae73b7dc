"""Side-by-side studies of minicnn and Keras, run from the repository root:

    python -m compare.parity                          per-layer differences, one step
    python -m compare.mnist_side_by_side --epochs 1   the MNIST convnet trained by both

Keras and TensorFlow are imported here freely: this package is not part of the engine.
"""
