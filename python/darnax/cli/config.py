"""The configuration of a ``darnax train`` run: sections, defaults, presets, TOML, validation.

A config is five sections (``model``, ``data``, ``optimizer``, ``trainer``, ``run``) holding every
PARAMS field of seeds 09/10; ``dim_data`` and ``num_labels`` are not fields: they come from the
dataset. Everything is checked before any work starts; an error names the field
(``model.sparsity``), what it expected and what it got.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DATASETS = ("digits", "mnist", "fashion-mnist", "prototypes")


class ConfigError(ValueError):
    """An invalid configuration; the message names the field."""


def _field(default: Any, check: str = "", **kw: Any) -> Any:
    return dataclasses.field(default=default, metadata={"check": check, **kw})


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The seeds' sparse network: input -> sparse W_in -> recurrent sparse J -> W_out -> labels."""

    seed: int = _field(44, ">=0")
    dim_hidden: int = _field(2000, ">0")
    sparsity: float = _field(0.99, "[0,1)")
    sparsity_win: float = _field(0.9, "[0,1)")
    strength_forth: float = _field(5.0, ">=0")
    strength_back: float = _field(1.3, ">=0")
    j_d: float = _field(0.95)
    threshold_in: float = _field(1.78, ">=0")
    threshold_out: float = _field(7.0, ">=0")
    threshold_j: float = _field(1.78, ">=0")
    threshold_back: float = _field(0.0, ">=0")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which dataset, where, and how it is batched and encoded."""

    dataset: str = _field("digits", "choice", choices=DATASETS)
    data_dir: str | None = _field(None)
    batch_size: int = _field(16, ">1")
    linear_projection: int | None = _field(None, ">0")
    num_images_per_class: int | None = _field(None, ">0")
    label_mode: str = _field("pm1", "choice", choices=("pm1", "ooe", "c-rescale"))
    x_transform: str = _field("identity", "choice", choices=("sign", "tanh", "identity"))
    validation_fraction: float = _field(0.0, "[0,1)")
    flatten: bool = _field(True)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Module-internal learning rates and weight decays (seed 10), applied through ``optax.sgd(1.0)``."""

    learning_rate_win: float = _field(0.159, ">=0")
    learning_rate_j: float = _field(0.058, ">=0")
    learning_rate_wout: float = _field(0.17, ">=0")
    weight_decay_win: float = _field(0.01, ">=0")
    weight_decay_j: float = _field(0.00006, ">=0")
    weight_decay_wout: float = _field(0.02, ">=0")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Iterations per phase of ``DynamicalTrainer`` and the recurrent dynamics."""

    warmup_n_iter: int = _field(1, ">=0")
    train_clamped_n_iter: int = _field(5, ">=0")
    train_free_n_iter: int = _field(5, ">=0")
    eval_n_iter: int = _field(5, ">=0")
    dynamics: str = _field("sync", "choice", choices=("sync", "async"))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Epochs and the training key (``master_seed``)."""

    epochs: int = _field(10, ">0")
    master_seed: int = _field(0, ">=0")


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict (``None`` fields included)."""
        return dataclasses.asdict(self)


#: Named starting points; a preset sets sections' fields, then the file and flags override.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The seeds' network and hyper-parameters on the bundled digits: about a minute on 2 cores.
    "default": {"run": {"epochs": 10}},
    # Seeds 09/10 exactly (batch 16, 1+5+5 train and 5 eval iterations, 20 epochs).
    "seed-sparse": {"run": {"epochs": 20}},
}

_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _check_value(where: str, field: dataclasses.Field, value: Any) -> Any:
    annotation = str(field.type)
    optional = annotation.endswith("| None")
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: expected {annotation}, got None")
    kind = _TYPES[annotation.split(" ")[0]]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {annotation}, got {type(value).__name__} {value!r}")
    check = field.metadata.get("check", "")
    ok = {
        "": True,
        ">=0": kind is str or value >= 0,
        ">0": kind is str or value > 0,
        ">1": kind is str or value > 1,
        "[0,1)": kind is str or 0.0 <= value < 1.0,
        "choice": value in field.metadata.get("choices", ()),
    }[check]
    if not ok:
        wanted = f"one of {field.metadata['choices']}" if check == "choice" else f"a value {check}"
        raise ConfigError(f"{where}: expected {wanted}, got {value!r}")
    return value


def _section(name: str, values: dict[str, Any], base: Any) -> Any:
    fields = {f.name: f for f in dataclasses.fields(base)}
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a table of fields, got {type(values).__name__}")
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown field (known: {', '.join(fields)})")
    checked = {key: _check_value(f"{name}.{key}", fields[key], v) for key, v in values.items()}
    return dataclasses.replace(base, **checked)


def merge(config: Config, overrides: dict[str, dict[str, Any]]) -> Config:
    """``config`` with the fields of ``overrides`` (``{section: {field: value}}``) replaced, checked."""
    unknown = sorted(set(overrides) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join(_SECTIONS)})")
    sections = {name: _section(name, values, getattr(config, name)) for name, values in overrides.items()}
    merged = dataclasses.replace(config, **sections)
    if not merged.data.flatten:
        raise ConfigError("data.flatten: the sparse network takes flat inputs; expected true, got false")
    return merged


def load_toml(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a TOML config file (``ConfigError`` naming the file on a syntax error)."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such config file") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from err


def resolve(preset: str = "default", file: str | Path | None = None, **flags: dict[str, Any]) -> Config:
    """Preset, then the TOML ``file``, then command-line ``flags`` (``{section: {field: value}}``)."""
    if preset not in PRESETS:
        raise ConfigError(f"preset: expected one of {tuple(PRESETS)}, got {preset!r}")
    config = merge(Config(), PRESETS[preset])
    if file is not None:
        config = merge(config, load_toml(file))
    return merge(config, {k: v for k, v in flags.items() if v})


def to_toml(config: Config) -> str:
    """The config as TOML (fields set to ``None`` are left out: absent means ``None``)."""
    lines: list[str] = []
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
            lines.append(f"{key} = {text}")
        lines.append("")
    return "\n".join(lines)
