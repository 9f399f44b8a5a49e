"""Sweep configuration: YAML in, one validated `SweepConfig` out, every problem reported at once.

A problem is reported as `FILE:LINE: dotted.key: message`, with a "did you mean" for a
misspelt key, so a user can fix a config in one pass. Overrides given on the command line
(`train.epochs=2 sweep.seeds=[0,1]`) are parsed as YAML values and applied before
validation; their problems name the override instead of a line.

Only `yaml.safe_load`-equivalent parsing is used (SafeLoader): a `!!python/...` tag is an
error, never code.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lsexp.errors import ConfigError
from lsexp.training.data import DATASET_NAMES, GRAYSCALE

DatasetName = Literal[DATASET_NAMES]  # type: ignore[valid-type]  # from training/data.py


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Numbers are taken as YAML typed them: `epochs: true` is not 1, `lr: "0.1"` is not 0.1, and
# `.inf` / `.nan` are refused where a finite number is meant (an infinite learning rate
# would make every run "diverge" instead of failing here).
MAX_SEED = 2**32 - 1  # numpy's and every RNG's common range; engine offsets stay in int64
MAX_EPOCHS = 100_000


def _int(**bounds: Any) -> Any:
    return Field(strict=True, **bounds)


def _float(**bounds: Any) -> Any:
    return Field(strict=True, allow_inf_nan=False, **bounds)


Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
Strength = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class DataConfig(_Strict):
    name: DatasetName = Field(description="Dataset to train on.")
    root: str | None = Field(
        default=None,
        description="Folder holding the datasets; default $LSEXP_DATA or ~/.cache/lsexp/data.",
    )
    val_size: int = _int(
        default=5000, ge=0, description="Examples carved from the training split for validation."
    )
    split_seed: int = _int(default=0, ge=0, le=MAX_SEED, description="Seed of the train/val split.")

    @field_validator("root")
    @classmethod
    def _root_not_empty(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("empty path; use null (or leave it out) for the default data folder")
        return v


class ModelConfig(_Strict):
    name: Literal["mlp", "cnn", "resnet", "airbench"]
    width: int | None = _int(
        default=None, gt=0, le=4096, description="cnn base width / resnet width / airbench width."
    )
    depth: int | None = _int(
        default=None, gt=0, le=1202, description="resnet depth 6n+2 (20, 56, ...)."
    )
    hidden: tuple[Annotated[int, Field(strict=True, gt=0, le=65536)], ...] | None = Field(
        default=None, description="mlp hidden sizes."
    )

    @model_validator(mode="after")
    def _fields_apply(self) -> ModelConfig:
        applies = {"mlp": {"hidden"}, "cnn": {"width"}, "resnet": {"width", "depth"},
                   "airbench": {"width"}}[self.name]  # fmt: skip
        for key in ("width", "depth", "hidden"):
            if getattr(self, key) is not None and key not in applies:
                raise ValueError(f"'{key}' does not apply to model '{self.name}'")
        # n >= 1, as build_model requires: depth 2 passes the modulus but has no blocks.
        depth_bad = self.depth is not None and (self.depth < 8 or (self.depth - 2) % 6 != 0)
        if self.name == "resnet" and depth_bad:
            raise ValueError(f"resnet depth must be 6n+2 (20, 32, 44, 56, 110), got {self.depth}")
        return self


AIRBENCH_OWN_KEYS = frozenset({"optimizer", "schedule", "warmup_epochs", "augment", "nesterov"})


class TrainConfig(_Strict):
    epochs: int = _int(gt=0, le=MAX_EPOCHS)
    batch_size: int = _int(default=128, gt=0, le=1_000_000)
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = _float(default=0.1, gt=0)
    momentum: float = _float(default=0.9, ge=0, lt=1)
    nesterov: bool = Field(default=True, strict=True)
    weight_decay: float = _float(default=5e-4, ge=0)
    schedule: Literal["cosine", "onecycle", "constant"] = "cosine"
    warmup_epochs: float = _float(default=0.0, ge=0, description="Linear warm-up (cosine only).")
    augment: bool = Field(
        default=False, strict=True, description="Random crop (pad 4) + flip for CIFAR."
    )
    recipe: Literal["standard", "airbench94"] = Field(
        default="standard",
        description="airbench94: Jordan 2024's fast CIFAR recipe (see lsexp/training/airbench.py); "
        "lr and weight_decay are then per 1024 examples, as in the paper.",
    )

    def settings(self) -> dict[str, Any]:
        """The settings in force, as plain data: without the keys that recipe airbench94
        replaces (it rejects them, and they would say nothing about the run)."""
        data = self.model_dump(mode="json")
        if self.recipe == "airbench94":
            for key in AIRBENCH_OWN_KEYS:
                del data[key]
        return data

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainConfig:
        if self.recipe == "airbench94":
            own = sorted(AIRBENCH_OWN_KEYS & self.model_fields_set)
            if own:
                raise ValueError(
                    f"{', '.join(own)} cannot be set with recipe airbench94, which brings its "
                    "own (Nesterov SGD, triangle schedule, flip + translate); remove them"
                )
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs must be smaller than epochs, got {self.warmup_epochs} >= "
                f"{self.epochs}"
            )
        return self


def _check_strengths(name: str, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """A strength list of objective `name`: not empty, each in its range, no repeats."""
    from lsexp.training.objectives import OBJECTIVES

    if v is None:
        return v
    objective = OBJECTIVES[name]
    if not v:
        example = ", ".join(f"{x:g}" for x in objective.default_grid)
        raise ValueError(f"{name} list is empty; give at least one value, e.g. [{example}] (or "
                         "leave the key out)")  # fmt: skip
    for value in v:
        if name == "label_smoothing" and not 0 <= value < 1:
            raise ValueError(
                f"alpha must be in [0, 1) (alpha=1 asks for the uniform distribution), got {value}"
            )
        problem = objective.check_strength(value)
        if problem:
            raise ValueError(problem)
    dup = sorted({a for a in v if v.count(a) > 1})
    if dup:
        what = "alpha" if name == "label_smoothing" else f"{name}"
        raise ValueError(f"duplicate {what} values: {dup}")
    return v


Strengths = tuple[Strength, ...] | None


class Arm(BaseModel):
    """One trained setting of a sweep: an objective at one strength (or, for distillation,
    with one teacher), trained once per seed."""

    model_config = ConfigDict(frozen=True)
    objective: str
    strength: float
    teacher: tuple[str, float] | None = None  # distillation: the teacher's (objective, strength)

    @property
    def key(self) -> tuple[str, float, tuple[str, float] | None]:
        return (self.objective, self.strength, self.teacher)


BASELINE = ("label_smoothing", 0.0)  # plain cross-entropy: strength 0 of any objective


def baseline_of(objective: str, strength: float) -> tuple[str, float]:
    """(objective, strength), or the shared baseline BASELINE when it is plain
    cross-entropy (strength 0 of label smoothing, focal, confidence penalty, mixup, CutMix)."""
    from lsexp.training.objectives import OBJECTIVES

    if strength == 0 and OBJECTIVES[objective].has_baseline_at_zero:
        return BASELINE
    return (objective, float(strength))


class DistillationGrid(_Strict):
    """`sweep.distillation`: students trained on teachers of the same sweep (Hinton et al.
    2015). Each teacher is named by objective and strength, e.g. {label_smoothing: 0.1};
    student seed s learns from teacher seed s."""

    teachers: tuple[dict[str, Strength], ...] = Field(
        description="Teachers, each {objective: strength} of a run of this sweep."
    )
    temperature: float = _float(default=4.0, gt=0, le=100, description="Softmax temperature τ.")
    hard_weight: float = _float(
        default=0.1, ge=0, le=1, description="Weight of the hard-label cross-entropy term."
    )
    model: ModelConfig | None = Field(
        default=None, description="The student's model; default the sweep's model."
    )

    @field_validator("teachers")
    @classmethod
    def _teachers_valid(cls, v: tuple[dict[str, float], ...]) -> tuple[dict[str, float], ...]:
        from lsexp.training.objectives import GRID_OBJECTIVES, OBJECTIVES

        if not v:
            raise ValueError("teachers list is empty; name at least one, e.g. "
                             "[{label_smoothing: 0}, {label_smoothing: 0.1}]")  # fmt: skip
        seen: list[tuple[str, float]] = []
        for item in v:
            if len(item) != 1:
                raise ValueError(
                    f"each teacher is one {{objective: strength}} pair, e.g. "
                    f"{{label_smoothing: 0.1}}; got {dict(item)}"
                )
            ((name, strength),) = item.items()
            if name not in GRID_OBJECTIVES:
                close = difflib.get_close_matches(name, GRID_OBJECTIVES, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"teacher objective '{name}' is unknown{hint}; known: "
                                 f"{', '.join(GRID_OBJECTIVES)}")  # fmt: skip
            problem = OBJECTIVES[name].check_strength(strength)
            if problem:
                raise ValueError(f"teacher {{{name}: {strength:g}}}: {problem}")
            key = baseline_of(name, strength)
            if key in seen:
                raise ValueError(f"duplicate teacher {{{name}: {strength:g}}}")
            seen.append(key)
        return v

    def teacher_keys(self) -> list[tuple[str, float]]:
        return [baseline_of(*next(iter(t.items()))) for t in self.teachers]


class SweepGrid(_Strict):
    """What a sweep trains: each objective's strengths (and the distillation teachers),
    each trained once per seed. `alpha` is label smoothing's list under its old name."""

    seeds: tuple[Seed, ...] = Field(description="Seeds; same seed = same init and data order.")
    alpha: Strengths = Field(
        default=None, description="Label-smoothing strengths, each in [0, 1) (= label_smoothing)."
    )
    label_smoothing: Strengths = Field(default=None, description="Label-smoothing strengths α.")
    focal: Strengths = Field(default=None, description="Focal-loss γ values, in [0, 10].")
    focal_adaptive: Strengths = Field(
        default=None, description="FLSD-53 (sample-dependent γ): the single value [53]."
    )
    confidence_penalty: Strengths = Field(
        default=None, description="Confidence-penalty β values, in [0, 10]."
    )
    mixup: Strengths = Field(default=None, description="mixup Beta(a, a) parameters, in [0, 10].")
    cutmix: Strengths = Field(default=None, description="CutMix Beta(a, a) parameters, in [0, 10].")
    distillation: DistillationGrid | None = Field(
        default=None, description="Students of teachers trained in this sweep."
    )

    @field_validator("alpha", "label_smoothing", "focal", "focal_adaptive",
                     "confidence_penalty", "mixup", "cutmix")  # fmt: skip
    @classmethod
    def _strengths_valid(cls, v: tuple[float, ...] | None, info) -> tuple[float, ...] | None:
        name = "label_smoothing" if info.field_name == "alpha" else info.field_name
        if v is not None and not v and info.field_name == "alpha":
            raise ValueError("alpha list is empty; give at least one value, e.g. [0, 0.1]")
        return _check_strengths(name, v)

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v:
            raise ValueError("seeds list is empty; give at least one seed, e.g. [0, 1, 2]")
        if any(s < 0 for s in v):
            raise ValueError(f"seeds must be >= 0, got {list(v)}")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"duplicate seeds: {dup}")
        return v

    @model_validator(mode="after")
    def _something_to_train(self) -> SweepGrid:
        if self.alpha is not None and self.label_smoothing is not None:
            raise ValueError("alpha and label_smoothing both list label-smoothing strengths; "
                             "keep one of them")  # fmt: skip
        if not any(getattr(self, name) is not None for name in _grid_names()):
            raise ValueError(
                "nothing to train: list label-smoothing strengths (alpha: [0, 0.1]) or another "
                f"objective's ({', '.join(_grid_names()[1:])})"
            )
        return self

    @property
    def ls_strengths(self) -> tuple[float, ...]:
        """Label smoothing's α values, as listed (under `alpha` or `label_smoothing`)."""
        return self.alpha if self.alpha is not None else (self.label_smoothing or ())

    def strengths(self, objective: str) -> tuple[float, ...]:
        if objective == "label_smoothing":
            return self.ls_strengths
        return getattr(self, objective, None) or ()

    def arms(self) -> list[Arm]:
        """Every (objective, strength) the sweep trains, in plan order: label smoothing as
        listed, then each other objective (strength 0 of any of them is the shared
        plain-cross-entropy baseline, trained once, as label smoothing at α = 0, which is
        added whenever another objective is swept), then the distillation students."""
        from lsexp.training.objectives import GRID_OBJECTIVES

        keys: list[tuple[str, float]] = [("label_smoothing", float(a)) for a in self.ls_strengths]
        others = [o for o in GRID_OBJECTIVES if o != "label_smoothing" and self.strengths(o)]
        if (others or self.distillation) and BASELINE not in keys:
            keys.append(BASELINE)
        for name in others:
            for strength in self.strengths(name):
                key = baseline_of(name, strength)
                if key not in keys:
                    keys.append(key)
        arms = [Arm(objective=o, strength=s) for o, s in keys]
        if self.distillation is not None:
            arms += [Arm(objective="distillation", strength=0.0, teacher=t)
                     for t in self.distillation.teacher_keys()]  # fmt: skip
        return arms

    def objectives(self) -> list[str]:
        """The objectives swept, in plan order (the baseline counted as label smoothing)."""
        return list(dict.fromkeys(a.objective for a in self.arms()))


def _grid_names() -> tuple[str, ...]:
    return ("alpha", "label_smoothing", "focal", "focal_adaptive", "confidence_penalty",
            "mixup", "cutmix", "distillation")  # fmt: skip


class EvalConfig(_Strict):
    n_bins: int = _int(default=15, gt=0, le=10_000, description="Equal-width bins for ECE.")
    batch_size: int = _int(
        default=1000, gt=0, le=1_000_000, description="Batch size for evaluation."
    )
    tta: Literal[0, 1, 2] = Field(
        default=0,
        description="Test-time augmentation of val and test logits: 0 none, 1 mean with the "
        "mirror image, 2 also one-pixel shifts (airbench94's). Changes calibration.",
    )


class ClaimsConfig(_Strict):
    """How `lsexp report` decides the claims (report-only: never part of a run's identity)."""

    margin: float = Field(
        default=0.5,
        gt=0,
        lt=100,
        allow_inf_nan=False,
        description="Margin of the accuracy claims, in percentage points (0.5 = half a point).",
    )
    interval: Literal["combined", "bootstrap", "t"] = Field(
        default="combined",
        description="Interval of the claims' paired differences: combined (t over seeds plus "
        "a test-set bootstrap), bootstrap (hierarchical percentile) or t (seeds only).",
    )
    n_boot: int = _int(default=1000, gt=99, le=100_000, description="Bootstrap resamples.")
    seed: int = _int(default=0, ge=0, le=2**32 - 1, description="Seed of the bootstrap.")


class SweepConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Sweep name.")
    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    sweep: SweepGrid
    eval: EvalConfig = EvalConfig()
    claims: ClaimsConfig = ClaimsConfig()
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"

    @model_validator(mode="after")
    def _settings_fit_together(self) -> SweepConfig:
        if self.train.recipe == "airbench94" and self.model.name != "airbench":
            raise ValueError(
                f"recipe airbench94 needs model.name: airbench, got '{self.model.name}'"
            )
        # Test-time augmentation averages over mirrored and shifted views; a model that never
        # saw them is hurt by it (measured: Fashion-MNIST, airbench width 16, 4 epochs,
        # alpha 0.2: 92.60 % without TTA, 91.57 % with, and ECE 19.8 % -> 31.8 %).
        flips_learned = self.train.recipe == "airbench94" or self.train.augment
        if self.eval.tta and (self.data.name in GRAYSCALE or not flips_learned):
            why = ("a grayscale dataset trains without flips and shifts"
                   if self.data.name in GRAYSCALE else
                   "this recipe trains without them (train.augment: false)")  # fmt: skip
            raise ValueError(
                f"eval.tta: {self.eval.tta} averages over mirrored and shifted images, but "
                f"{why}; set eval.tta: 0"
            )
        return self

    def identity(self) -> dict[str, Any]:
        """The settings that define what a run computes (not where or how fast it runs).

        The dataset root, the device and the sweep grid are left out: a run is identified
        by these settings plus its own alpha and seed (see `run_identity`).
        """
        data = self.data.model_dump(exclude={"root"})
        identity = {
            "data": data,
            "model": self.model.model_dump(mode="json"),
            "train": self.train.settings(),
            "eval": self.eval.model_dump(mode="json", exclude={"batch_size"}),
        }
        # Settings added after 0.1 are left out at their default, so that runs made before
        # they existed keep their ids (and are not retrained).
        for section, key in _ADDED_LATER:
            default = type(getattr(self, section)).model_fields[key].default
            if identity[section][key] == default:
                del identity[section][key]
        return normalize_identity(identity)


_ADDED_LATER = (("train", "recipe"), ("eval", "tta"))

# Settings the report recomputes from the saved logits, so they must not decide whether a
# run is retrained. `eval.n_bins` was part of run identity before 0.2; it now stays in the
# identity as this constant, so that ids of runs made with the default 15 bins do not
# change. Runs made with other bin counts are found through the identity in their
# run.json (`store.ResultsStore` normalizes it the same way).
REPORT_ONLY = {("eval", "n_bins"): 15}


def normalize_identity(identity: dict[str, Any]) -> dict[str, Any]:
    """The identity with every report-only setting at its fixed value (a copy)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in identity.items()}
    for (section, key), value in REPORT_ONLY.items():
        if isinstance(out.get(section), dict):
            out[section][key] = value
    return out


def run_identity(config: SweepConfig, arm: Arm | float, seed: int) -> dict[str, Any]:
    """What one run computes: the config's identity plus the run's own keys.

    Label smoothing (and the shared baseline) adds {"alpha", "seed"}, as every run made
    before other objectives existed, so their ids never change. Another objective adds
    {"objective", "strength", "seed"}; a distillation student {"objective", "teacher" (the
    teacher run's id), "distillation" (τ, hard-label weight, the student's model), "seed"}.
    A bare number is a label-smoothing α.
    """
    if not isinstance(arm, Arm):
        arm = Arm(objective="label_smoothing", strength=float(arm))
    base = config.identity()
    if arm.objective == "label_smoothing":
        return {**base, "alpha": float(arm.strength), "seed": int(seed)}
    if arm.objective != "distillation":
        return {**base, "objective": arm.objective, "strength": float(arm.strength),
                "seed": int(seed)}  # fmt: skip
    assert arm.teacher is not None and config.sweep.distillation is not None
    d = config.sweep.distillation
    teacher = Arm(objective=arm.teacher[0], strength=arm.teacher[1])
    return {
        **base,
        "objective": "distillation",
        "teacher": stable_hash(run_identity(config, teacher, seed)),
        "distillation": {"temperature": d.temperature, "hard_weight": d.hard_weight,
                         "model": student_model(config).model_dump(mode="json")},
        "seed": int(seed),
    }  # fmt: skip


# The keys `run_identity` adds to the config's identity, one run's own.
RUN_KEYS = ("alpha", "seed", "objective", "strength", "teacher", "distillation")


def student_model(config: SweepConfig) -> ModelConfig:
    """The model of the sweep's distillation students (the sweep's model by default)."""
    d = config.sweep.distillation
    return d.model if d is not None and d.model is not None else config.model


def cross_problems(config: SweepConfig) -> list[tuple[Path_, str]]:
    """Problems only the whole config shows, each with the key path it is about."""
    problems: list[tuple[Path_, str]] = []
    d = config.sweep.distillation
    if d is None:
        return problems
    trained = {a.key[:2] for a in config.sweep.arms() if a.objective != "distillation"}
    for i, (item, key) in enumerate(zip(d.teachers, d.teacher_keys(), strict=True)):
        if key not in trained:
            ((name, strength),) = item.items()
            where = "alpha" if name == "label_smoothing" and config.sweep.alpha else name
            problems.append((
                ("sweep", "distillation", "teachers", i),
                f"teacher {{{name}: {strength:g}}} is not trained by this sweep; add {strength:g} "
                f"to sweep.{where}, or name a teacher that is",
            ))  # fmt: skip
    student = student_model(config)
    if config.train.recipe == "airbench94" and student.name != "airbench":
        problems.append(
            (
                ("sweep", "distillation", "model", "name"),
                f"recipe airbench94 trains only model airbench, got student model "
                f"'{student.name}'; use the airbench model or train.recipe: standard",
            )
        )
    return problems


def stable_hash(obj: Any, length: int = 12) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


class _LineIndex:
    """Maps a key path to the line where it appears in the YAML file."""

    def __init__(self) -> None:
        self.lines: dict[Path_, int] = {}

    def line_of(self, path: Path_) -> int | None:
        # Deepest prefix that exists: a missing key is reported at its parent's line.
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None


def _walk(
    node: yaml.Node,
    path: Path_,
    index: _LineIndex,
    problems: list[str],
    where: str,
    walked: set[int] | None = None,
):
    index.lines.setdefault(path, node.start_mark.line + 1)
    # An alias is the same node object as its anchor: walk each node once, so a recursive
    # alias (`a: &x [*x]`) cannot recurse forever and nested aliases ("billion laughs")
    # cannot expand exponentially. Lines under an alias fall back to the alias's key.
    walked = set() if walked is None else walked
    if id(node) in walked:
        return
    walked.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # `? [a, b]`: unhashable; SafeLoader reports it with its line
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                problems.append(
                    f"{where}:{line}: {dotted}: duplicate key (first set on line {seen[key]}); "
                    "remove one of them"
                )
            seen[key] = line
            index.lines[(*path, key)] = line
            _walk(value_node, (*path, key), index, problems, where, walked)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), index, problems, where, walked)


def _yaml_reason(e: yaml.YAMLError) -> str:
    """PyYAML's message without the source excerpt it appends: a problem is one line."""
    return (getattr(e, "problem", None) or str(e).strip().splitlines()[0]).strip()


def _parse_yaml(text: str, where: str) -> tuple[Any, _LineIndex, list[str]]:
    index = _LineIndex()
    problems: list[str] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _walk(node, (), index, problems, where)
        data = yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = _yaml_reason(e)
        if "python/" in str(e) or "could not determine a constructor" in problem:
            problem += " (tags that construct Python objects are not allowed)"
        raise ConfigError([f"{where}{line}: YAML error: {problem}"]) from None
    except yaml.reader.ReaderError as e:  # a control character; position counts characters
        line = text.count("\n", 0, e.position) + 1
        raise ConfigError([f"{where}:{line}: YAML error: {_yaml_reason(e)}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{where}: YAML error: {_yaml_reason(e)}"]) from None
    return data, index, problems


# ---------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=2` -> (["train", "epochs"], 2). The value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(
            [f"override '{text}': expected KEY=VALUE with a dotted key, e.g. train.epochs=2"]
        )
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError([f"override '{text}': empty part in key '{key}'"])
    try:
        value = yaml.load(raw, Loader=yaml.SafeLoader) if raw.strip() else None  # noqa: S506
    except yaml.YAMLError as e:
        raise ConfigError(
            [f"override '{text}': value is not valid YAML ({_yaml_reason(e)})"]
        ) from None
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, str]:
    """Apply overrides in place; return {dotted key: override text} for error messages."""
    origin: dict[str, str] = {}
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError([f"override '{text}': '{where}' is a value, not a section"])
            node = child
        node[parts[-1]] = value
        origin[".".join(parts)] = text
    return origin


# ---------------------------------------------------------------------------------------
# Validation errors -> readable lines
# ---------------------------------------------------------------------------------------

_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "sweep.distillation": DistillationGrid,
    "data": DataConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "sweep": SweepGrid,
    "eval": EvalConfig,
}


def _known_keys(path: Path_) -> list[str]:
    if len(path) == 1:
        return list(SweepConfig.model_fields)
    if len(path) == 2 and path[0] in _SECTION_MODELS:
        return list(_SECTION_MODELS[str(path[0])].model_fields)
    if len(path) == 3 and f"{path[0]}.{path[1]}" in _SECTION_MODELS:
        return list(_SECTION_MODELS[f"{path[0]}.{path[1]}"].model_fields)
    return []


def _format_error(err: dict[str, Any], where: str, index: _LineIndex, origin: dict[str, str]):
    loc: Path_ = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("[")))
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    kind = err["type"]
    msg = err["msg"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _known_keys(loc), n=1, cutoff=0.6)
        known = ", ".join(_known_keys(loc))
        msg = (
            f"unknown key (did you mean '{close[0]}'?)" if close else f"unknown key; known: {known}"
        )
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "literal_error":
        got = err.get("input")
        msg = f"{msg}, got {got!r}"
        if isinstance(got, str):
            expected = err.get("ctx", {}).get("expected", "")
            options = [o.strip().strip("'") for o in expected.replace(" or ", ",").split(",")]
            close = difflib.get_close_matches(got, [o for o in options if o], n=1, cutoff=0.6)
            if close:
                msg += f" (did you mean '{close[0]}'?)"
    elif kind.endswith(("_type", "_parsing", "_equal", "_than", "finite_number")):
        msg = f"{msg}, got {err.get('input')!r}"
    elif kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        msg = "use letters, digits, '_', '-' or '.' (it names the results folder)"
    # An override wins over the file for the location.
    for n in range(len(loc), 0, -1):
        key = ".".join(str(p) for p in loc[:n])
        if key in origin:
            return f"override '{origin[key]}': {dotted}: {msg}"
    # A check of a whole section (or of the whole config) that an override took part in:
    # name the override, since the file alone may be fine.
    prefix = "".join(f"{p}." for p in loc)
    inside = [text for key, text in origin.items() if key.startswith(prefix)]
    if inside:
        names = ", ".join(f"'{text}'" for text in inside)
        plural = "s" if len(inside) > 1 else ""
        return f"override{plural} {names} (with {where}): {dotted}: {msg}"
    line = index.line_of(loc)
    return f"{where}{f':{line}' if line else ''}: {dotted}: {msg}"


def validate(data: Any, where: str, index: _LineIndex | None = None, origin=None) -> SweepConfig:
    index = index or _LineIndex()
    origin = origin or {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"{where}: expected a mapping with keys name, data, model, train, sweep; got "
                f"{type(data).__name__}"
            ]
        )
    try:
        config = SweepConfig.model_validate(data)
    except ValidationError as e:
        problems = [_format_error(err, where, index, origin) for err in e.errors()]
        raise ConfigError(problems) from None
    problems = [
        _format_error({"loc": loc, "type": "value_error", "msg": msg}, where, index, origin)
        for loc, msg in cross_problems(config)
    ]
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """Read, override and validate a sweep config. Raises ConfigError with every problem."""
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{where}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{where}: cannot read config ({e})"]) from None
    data, index, problems = _parse_yaml(text, where)
    if data is None:
        data = {}
    origin: dict[str, str] = {}
    if isinstance(data, dict):
        origin = apply_overrides(data, list(overrides or []))
        data.setdefault("name", path.stem)
    try:
        config = validate(data, where, index, origin)
    except ConfigError as e:
        raise ConfigError(problems + e.problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def config_data(config: SweepConfig) -> dict[str, Any]:
    """Plain data that `validate` turns back into the same config (stored sweep.yaml,
    submitit array tasks)."""
    return {**config.model_dump(mode="json"), "train": config.train.settings()}


def config_to_yaml(config: SweepConfig) -> str:
    return yaml.safe_dump(config_data(config), sort_keys=False)
