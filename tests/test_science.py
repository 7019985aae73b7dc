"""The chapter's claims that are cheap to check, asserted on small synthetic data.

* Transfer (README, "Transfer learning"; the book's section 5.3): a convolutional base
  pretrained on one task is worth more than a small labeled set on another.  Here the
  tasks are rendered digits (a scalable font, random size, offset and rotation, noise):
  the convnet of ``minicnn.experiments.transfer`` is pretrained on digits 0-4, then
  digits 5-9 are learned from 25 labeled images by training from scratch and by
  feature extraction (frozen base, new head), with the experiment's own ``run_seed``.
  Feature extraction must win on each of three seeds.  Measured here (pretraining
  6 epochs on about 1,700 images): 11.6, 9.8 and 6.6 points on seeds 0, 1, 2.
* Why downsample (README; section 5.1.2): the parameter counts of the convolutional
  base without pooling (55,744) and of the study's four variants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SEEDS = (0, 1, 2)
LABELED = 25
MIN_MEAN_MARGIN_POINTS = 2.0


def rendered_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x (count, 28, 28, 1) float32 in [0, 1], labels 0..9): digits drawn with Pillow's
    scalable default font at a random size, offset and rotation, plus Gaussian noise."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    try:
        fonts = {size: ImageFont.load_default(size=size) for size in (16, 18, 20, 22)}
    except TypeError:  # Pillow < 10.1: no scalable default font
        pytest.skip("needs Pillow >= 10.1 (ImageFont.load_default(size=...))")
    labels = rng.integers(0, 10, count)
    x = np.zeros((count, 28, 28), np.float32)
    for index, digit in enumerate(labels):
        image = Image.new("L", (28, 28))
        font = fonts[int(rng.choice(list(fonts)))]
        ImageDraw.Draw(image).text((int(rng.integers(4, 12)), int(rng.integers(-2, 6))),
                                   str(int(digit)), fill=255, font=font)
        image = image.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR)
        x[index] = np.asarray(image, np.float32) / 255
    x = np.clip(x + rng.normal(0, 0.15, x.shape).astype(np.float32), 0, 1)
    return x[..., None], labels


@pytest.mark.slow
def test_feature_extraction_beats_training_from_scratch_on_every_seed(tmp_path: Path) -> None:
    from minicnn.experiments import transfer

    x, labels = rendered_digits(4000, seed=0)
    source = np.isin(labels, transfer.SOURCE_DIGITS)
    x_source, y_source = x[source], labels[source]
    pretrained, info = transfer.pretrain((x_source[:-300], y_source[:-300]),
                                         (x_source[-300:], y_source[-300:]), tmp_path,
                                         epochs=6, seed=0, verbose=0)
    assert info["test_accuracy"] > 0.6, f"pretraining did not learn digits 0-4: {info}"
    x_target, y_target = x[~source], labels[~source] - 5
    one_hot = np.eye(5, dtype=np.float32)
    test = (x_target[-800:], one_hot[y_target[-800:]])
    margins = []
    for seed in SEEDS:
        chosen = transfer.draw_labeled(y_target[:-800], LABELED, seed)
        labeled = (x_target[chosen], one_hot[y_target[chosen]])
        results = transfer.run_seed(pretrained, labeled, test, seed, epochs=20,
                                    fine_tune_epochs=1, batch_size=20, learning_rate=1e-3,
                                    fine_tune_learning_rate=1e-4)
        margins.append(100 * (results["feature-extraction"]["test_accuracy"]
                              - results["scratch"]["test_accuracy"]))
    print(f"\nfeature extraction minus scratch, points per seed: {np.round(margins, 2)}")
    assert min(margins) > 0, f"feature extraction lost to scratch on a seed: {margins}"
    assert np.mean(margins) >= MIN_MEAN_MARGIN_POINTS


def test_the_base_without_downsampling_has_55744_parameters() -> None:
    from minicnn.applications.registry import build_model

    model = build_model("no-max-pool")
    assert model.count_params() == 55_744  # 320 + 18,496 + 36,928
    assert model.output_shape == (None, 22, 22, 64)


def test_downsampling_variants_have_the_readme_parameter_counts() -> None:
    from minicnn.experiments import downsampling

    readme = {"max-pool": 93_322, "avg-pool": 93_322, "strided-conv": 121_994,
              "no-downsampling": 365_514}
    counts = {name: downsampling.build_variant(name).count_params() for name in readme}
    assert counts == readme
    # "the model without downsampling is four times larger"
    assert 3.5 < counts["no-downsampling"] / counts["max-pool"] < 4.5
    assert downsampling.dense_on_unpooled_map_parameters()["parameters"] == 15_860_224
