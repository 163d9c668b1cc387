"""Datasets for darnax: real image classification (MNIST, Fashion-MNIST, bundled 8x8 digits) and
synthetic prototypes, all with one interface (``build(key)``, iteration over ``(x, y)`` batches,
``iter_test``, ``iter_valid``, ``arrays``, ``spec``).

Files are never downloaded unless asked (``download=True`` or ``DARNAX_ALLOW_DOWNLOAD=1``); see
:mod:`darnax.datasets.locate` for where they are looked for.
"""

from darnax.datasets.classification import ClassificationDataset as ClassificationDataset
from darnax.datasets.classification import Digits as Digits
from darnax.datasets.classification import FashionMnist as FashionMnist
from darnax.datasets.classification import Mnist as Mnist
from darnax.datasets.classification import Prototypes as Prototypes
from darnax.datasets.idx import IdxFormatError as IdxFormatError
from darnax.datasets.idx import read_idx as read_idx
from darnax.datasets.locate import DatasetNotFoundError as DatasetNotFoundError
