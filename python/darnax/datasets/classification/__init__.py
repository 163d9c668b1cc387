"""Classification datasets: configure, ``build(key)``, then iterate ``(x, y)`` batches.

``Mnist`` and ``FashionMnist`` read the standard IDX files (see :mod:`darnax.datasets.locate`
for where); ``Digits`` is bundled (works offline); ``Prototypes`` is synthetic.
"""

from darnax.datasets.classification.base import ClassificationDataset as ClassificationDataset
from darnax.datasets.classification.digits import Digits as Digits
from darnax.datasets.classification.fashion_mnist import FashionMnist as FashionMnist
from darnax.datasets.classification.mnist import Mnist as Mnist
from darnax.datasets.classification.prototypes import Prototypes as Prototypes
