"""The dataset of a run, from its ``[data]`` section."""

from __future__ import annotations

from darnax.cli.config import DataConfig
from darnax.datasets import Digits, FashionMnist, Mnist, Prototypes
from darnax.datasets.classification.base import ClassificationDataset


def make_dataset(data: DataConfig) -> ClassificationDataset:
    """The configured dataset, not yet built (``build(key)`` loads it).

    ``digits`` is bundled with darnax; ``mnist`` and ``fashion-mnist`` are looked for in
    ``data.data_dir``, then ``DARNAX_DATA_DIR``, the user cache and system folders;
    ``prototypes`` is synthetic (seed 06).
    """
    common = {
        "batch_size": data.batch_size,
        "label_mode": data.label_mode,
        "x_transform": data.x_transform,
        "validation_fraction": data.validation_fraction,
    }
    if data.dataset == "prototypes":
        return Prototypes(**common)
    images = {
        **common,
        "linear_projection": data.linear_projection,
        "num_images_per_class": data.num_images_per_class,
        "flatten": data.flatten,
    }
    if data.dataset == "digits":
        return Digits(**images)
    cls = Mnist if data.dataset == "mnist" else FashionMnist
    return cls(**images, data_dir=data.data_dir)
