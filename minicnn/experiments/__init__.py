"""Studies that train several models under the same budget and compare them.

``downsampling``: the seed's question "why downsample, and why max pooling rather than
strided convolutions or average pooling?" (``minicnn experiment downsampling``).
"""

__all__ = ["downsampling"]
