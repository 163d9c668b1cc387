"""Validation accuracy of a configuration after every epoch, the test split untouched.

Trains ``CONFIG`` (a ``darnax train --config`` file) on the training split less its validation
tenth, as ``darnax tune`` does, and prints one JSON line per epoch. It is how the epoch count of
a tuned preset is chosen without looking at the test split.

Usage::

    python bench/tuning/validation_curve.py bench/tuning/fashion-mnist/tuned.toml --epochs 20
        --data-dir ../shared/datasets --out runs/tuned-valid   (one line)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from darnax.cli.config import merge, resolve
from darnax.cli.tune import validation_epochs, with_validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="TOML config (as for darnax train --config)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data-dir", help="folder with the IDX files (else DARNAX_DATA_DIR)")
    parser.add_argument("--out", default="runs/validation-curve", help="run directory")
    args = parser.parse_args()
    data = {"data_dir": args.data_dir} if args.data_dir else {}
    config = with_validation(merge(resolve(file=args.config), {"data": data, "run": {"epochs": args.epochs}}))
    for epoch, seconds, accuracy in validation_epochs(config, Path(args.out)):
        record = {"epoch": epoch, "validation_accuracy": accuracy, "train_seconds": round(seconds, 1)}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
