"""The configuration of a ``darnax train`` run: sections, defaults, presets, TOML, validation.

A config is five sections (``model``, ``data``, ``optimizer``, ``trainer``, ``run``) holding every
PARAMS field of seeds 09/10; ``dim_data`` and ``num_labels`` are not fields: they come from the
dataset. Everything is checked before any work starts; an error names the field
(``model.sparsity``, or ``model.sparsity[1]`` for one entry of a list), what it expected and what
it got.

Deep networks: ``model.dim_hidden`` is one width (one hidden layer, the seeds' network) or a list
of widths, one per hidden layer, bottom to top. Every per-layer field (``per=LAYER`` in its
metadata) is then a scalar, used by every hidden layer, or a list with one entry per hidden layer
(entry ``l`` configures the couplings *into* hidden layer ``l``); the fields of the top-down
couplings between hidden layers (``per=TOP_DOWN``) have one entry per such coupling, i.e. per
hidden layer but the top one (whose top-down coupling is the frozen label feedback).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

DATASETS = ("digits", "mnist", "fashion-mnist", "prototypes")
CONNECTIVITIES = ("bernoulli", "fixed-fan-in")


class ConfigError(ValueError):
    """An invalid configuration; the message names the field."""


#: The ``per`` values (a scalar or one entry per hidden layer, or per top-down hidden coupling).
LAYER, TOP_DOWN = "layer", "top-down"


def _field(default: Any, check: str = "", **kw: Any) -> Any:
    return dataclasses.field(default=default, metadata={"check": check, **kw})


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The seeds' sparse network, with one or more hidden layers.

    ``input -> W_in -> [J_1] <-> W -> [J_2] <-> ... -> [J_L] -> W_out -> labels``, the labels fed
    back into ``[J_L]``. Per hidden layer ``l`` (list entry ``l``, or a scalar for all): the
    forward coupling from the layer below (``sparsity_win``, ``strength_forth``,
    ``threshold_in``; the input layer's ``W_in`` for the first), the recurrent couplings
    (``sparsity``, ``j_d``, ``threshold_j``) and the top-down coupling from the layer above
    (``strength_back``, ``threshold_back``; the frozen label feedback for the top layer, a
    plastic sparse coupling with ``sparsity_back`` for the others).

    ``connectivity`` draws every sparse pattern: ``"bernoulli"`` keeps each coupling with
    probability ``1 - sparsity`` (the reference's draw, bit for bit at its sizes);
    ``"fixed-fan-in"`` gives every receiving unit exactly ``round((1 - sparsity) * senders)``
    inputs (no self-coupling), in O(nnz) at any width.
    """

    seed: int = _field(44, ">=0")
    dim_hidden: int | tuple[int, ...] = _field(2000, ">0", per=LAYER)
    sparsity: float | tuple[float, ...] = _field(0.99, "[0,1)", per=LAYER)
    sparsity_win: float | tuple[float, ...] = _field(0.9, "[0,1)", per=LAYER)
    sparsity_back: float | tuple[float, ...] = _field(0.95, "[0,1)", per=TOP_DOWN)
    strength_forth: float | tuple[float, ...] = _field(5.0, ">=0", per=LAYER)
    strength_back: float | tuple[float, ...] = _field(1.3, ">=0", per=LAYER)
    j_d: float | tuple[float, ...] = _field(0.95, per=LAYER)
    threshold_in: float | tuple[float, ...] = _field(1.78, ">=0", per=LAYER)
    threshold_out: float = _field(7.0, ">=0")
    threshold_j: float | tuple[float, ...] = _field(1.78, ">=0", per=LAYER)
    threshold_back: float | tuple[float, ...] = _field(0.0, ">=0", per=LAYER)
    connectivity: str = _field("bernoulli", "choice", choices=CONNECTIVITIES, added=True)

    @property
    def depth(self) -> int:
        """The number of hidden layers."""
        return len(self.dim_hidden) if isinstance(self.dim_hidden, tuple) else 1


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
    """Module-internal learning rates and weight decays (seed 10), applied through ``optax.sgd(1.0)``.

    ``*_win`` and ``*_j`` are per hidden layer (forward and recurrent couplings), ``*_back`` per
    top-down coupling between hidden layers (0 freezes them), as in :class:`ModelConfig`.
    ``learning_rate_backprop`` is Adam's learning rate under ``trainer.rule = "backprop"`` (which
    uses none of the others).
    """

    learning_rate_win: float | tuple[float, ...] = _field(0.159, ">=0", per=LAYER)
    learning_rate_j: float | tuple[float, ...] = _field(0.058, ">=0", per=LAYER)
    learning_rate_back: float | tuple[float, ...] = _field(0.159, ">=0", per=TOP_DOWN)
    learning_rate_wout: float = _field(0.17, ">=0")
    weight_decay_win: float | tuple[float, ...] = _field(0.01, ">=0", per=LAYER)
    weight_decay_j: float | tuple[float, ...] = _field(0.00006, ">=0", per=LAYER)
    weight_decay_back: float | tuple[float, ...] = _field(0.01, ">=0", per=TOP_DOWN)
    weight_decay_wout: float = _field(0.02, ">=0")
    learning_rate_backprop: float = _field(1e-3, ">=0", added=True)


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Iterations per phase of ``DynamicalTrainer`` and the recurrent dynamics, or (``rule``) the
    backpropagation baseline instead: ``"local"`` trains with the local rule
    (:class:`~darnax.trainers.dynamical.DynamicalTrainer`), ``"backprop"`` the same network's
    forward couplings by gradient descent (:class:`~darnax.trainers.backprop.BackpropTrainer`,
    Adam, no dynamics: the iteration counts and ``dynamics`` are then unused)."""

    warmup_n_iter: int = _field(1, ">=0")
    train_clamped_n_iter: int = _field(5, ">=0")
    train_free_n_iter: int = _field(5, ">=0")
    eval_n_iter: int = _field(5, ">=0")
    dynamics: str = _field("sync", "choice", choices=("sync", "async"))
    rule: str = _field("local", "choice", choices=("local", "backprop"), added=True)


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
    # Two hidden layers, 784-2000-1000-10: the seeds' first layer, then a second one whose ±1
    # senders give a forward field of std strength_forth (8), so its label feedback is stronger
    # (3.0) than the seeds' (1.3); a weak plastic top-down coupling (0.5) into the first layer,
    # with the margin of its other couplings. The forward coupling into the second layer decays
    # 10x slower than W_in: at 0.01 it faded while that layer's J grew, and the layer's states
    # drifted away from its input (test accuracy fell epoch after epoch). Chosen on short runs
    # (bench/RESULTS.md, section 4).
    "deep-2": {
        "model": {
            "dim_hidden": [2000, 1000],
            "sparsity_win": [0.9, 0.95],
            "sparsity_back": 0.95,
            "strength_forth": [5.0, 8.0],
            "strength_back": [0.5, 3.0],
            "threshold_back": [1.78, 0.0],
        },
        "optimizer": {"weight_decay_win": [0.01, 0.001]},
        "run": {"epochs": 20},
    },
    # The seeds' network 50x wider: 100,000 hidden units, each with exactly 100 recurrent and 78
    # input couplings (17.8 M stored), seed-10 hyper-parameters otherwise (bench/RESULTS.md).
    "wide-100k": {"model": {"dim_hidden": 100_000, "sparsity": 0.999, "connectivity": "fixed-fan-in"}},
    # Found by `darnax tune` on Fashion-MNIST's validation tenth (63 trials of 3 epochs around the
    # authors' published configuration at 6,000 units; trial 48, rounded to 4 digits): sparser
    # input couplings that learn slowly, a weak label feedback, low input thresholds, the authors'
    # weight decays. Study and curves: bench/RESULTS.md, section 17.
    "fashion-mnist-tuned": {
        "model": {
            "dim_hidden": 6000,
            "sparsity": 0.9849,
            "sparsity_win": 0.9688,
            "j_d": 0.7781,
            "threshold_in": 0.3436,
            "threshold_j": 1.364,
            "threshold_out": 7.0,
            "strength_forth": 8.555,
            "strength_back": 0.2641,
        },
        "data": {"dataset": "fashion-mnist"},
        "optimizer": {
            "learning_rate_j": 0.01265,
            "learning_rate_win": 0.03292,
            "learning_rate_wout": 0.1006,
            "weight_decay_j": 0.0001,
            "weight_decay_win": 0.00002,
            "weight_decay_wout": 0.02,
        },
        "run": {"epochs": 20},
    },
}

_SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _check_value(where: str, field: dataclasses.Field, value: Any) -> Any:
    """``value`` checked against ``field``; a per-layer list becomes a tuple, entry by entry."""
    annotation = str(field.type)
    if not field.metadata.get("per"):
        return _check_scalar(where, field, value, annotation)
    kind = annotation.split(" ")[0]
    if isinstance(value, (list, tuple)):
        return tuple(_check_scalar(f"{where}[{k}]", field, v, kind) for k, v in enumerate(value))
    return _check_scalar(where, field, value, f"{kind} or a list of {kind}")


def _check_scalar(where: str, field: dataclasses.Field, value: Any, expected: str) -> Any:
    if value is None:
        if expected.endswith("| None"):
            return None
        raise ConfigError(f"{where}: expected {expected}, got None")
    kind = _TYPES[expected.split(" ")[0]]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")
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


def _check_lengths(config: Config) -> None:
    """Every per-layer list has one entry per hidden layer (per top-down coupling for those)."""
    depth = config.model.depth
    if depth == 0:
        raise ConfigError("model.dim_hidden: expected a width or a non-empty list of widths, got []")
    for section in ("model", "optimizer"):
        values = getattr(config, section)
        for f in dataclasses.fields(values):
            value, per = getattr(values, f.name), f.metadata.get("per")
            want = depth if per == LAYER else depth - 1
            if per and isinstance(value, tuple) and len(value) != want:
                what = "hidden layer" if per == LAYER else "top-down coupling between hidden layers"
                raise ConfigError(
                    f"{section}.{f.name}: expected a scalar or {want} value(s), one per {what} "
                    f"(model.dim_hidden has {depth} layer(s)), got {len(value)}"
                )


def training_sections(config: Config) -> dict[str, dict[str, Any]]:
    """Every section but ``run``, less the fields that change nothing from the runs made before
    they existed, so that those runs' identity (their checkpoint fingerprint) is unchanged.

    Those are the top-down fields (``sparsity_back``, ...) of a one-hidden-layer network, which has
    no top-down coupling between hidden layers, and later fields (``added`` in their metadata)
    left at their defaults.
    """
    sections = {name: values for name, values in config.to_dict().items() if name != "run"}
    for name in sections:
        for f in dataclasses.fields(getattr(config, name)):
            if f.metadata.get("added") and getattr(getattr(config, name), f.name) == f.default:
                del sections[name][f.name]
    if config.model.depth == 1:
        for name in ("model", "optimizer"):
            for f in dataclasses.fields(getattr(config, name)):
                if f.metadata.get("per") == TOP_DOWN:
                    del sections[name][f.name]
    return sections


def method(config: Config) -> str:
    """How the run learns, for run names and logs: ``"backprop"``, else its dynamics (``"sync"``, ``"async"``)."""
    return "backprop" if config.trainer.rule == "backprop" else config.trainer.dynamics


def layer_values(config: Config) -> dict[str, tuple[Any, ...]]:
    """Every per-layer field of ``model`` and ``optimizer`` (``dim_hidden`` included) as a tuple:
    one entry per hidden layer, or per top-down coupling between hidden layers (a scalar repeated)."""
    depth = config.model.depth
    out = {}
    for section in (config.model, config.optimizer):
        for f in dataclasses.fields(section):
            per, value = f.metadata.get("per"), getattr(section, f.name)
            if per:
                out[f.name] = value if isinstance(value, tuple) else (value,) * (depth if per == LAYER else depth - 1)
    return out


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
    _check_lengths(merged)
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
