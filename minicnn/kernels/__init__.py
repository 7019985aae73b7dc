"""Array-in/array-out kernels, one module per backend, all with the same signatures.

Every backend module (``reference``, ``numpy_ops``, ``numba_ops``) exports::

    conv2d_forward(x, kernel, bias, strides, pads) -> (y, cache)
        x       (N, H, W, C)      input, float32 or float64 (the output keeps x's dtype)
        kernel  (KH, KW, C, F)    HWIO, as Keras stores it
        bias    (F,) or None
        strides (SH, SW)
        pads    ((top, bottom), (left, right))  zero padding, already resolved
        y       (N, OH, OW, F)    OH = (H + top + bottom - KH) // SH + 1, same for OW
        cache   opaque; whatever conv2d_backward of the *same* backend needs

    conv2d_backward(dy, cache, need_input_grad=True) -> (dx, dkernel, dbias)
        dy (N, OH, OW, F); dx (N, H, W, C) or None when need_input_grad is False;
        dkernel (KH, KW, C, F); dbias (F,) or None when the forward had no bias.

    max_pool2d_forward(x, pool_size, strides, pads) -> (y, cache)
        Padded cells never win (they act as -inf, as in TensorFlow's "SAME").
    max_pool2d_backward(dy, cache) -> dx
        Each output's gradient goes to the *first* maximum of its window in
        row-major order (ties: one winner, as TensorFlow's CPU kernel).

    avg_pool2d_forward(x, pool_size, strides, pads) -> (y, cache)
        Each output is the mean over the real (unpadded) cells of its window.
    avg_pool2d_backward(dy, cache) -> dx

Pads and output sizes come from :mod:`minicnn.kernels.geometry`, so every backend sees
the same resolved numbers.  The backend is chosen in one place: :mod:`minicnn.backend`.
"""

BACKEND_MODULES = {
    "reference": "minicnn.kernels.reference",
    "numpy": "minicnn.kernels.numpy_ops",
    "numba": "minicnn.kernels.numba_ops",
}
