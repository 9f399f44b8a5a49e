"""Config loading: every problem reported at once, each as `FILE:LINE: dotted.key: message`.

Configs are written as YAML text so that line numbers are real; the expected line is
looked up in that text (`line_of`), never counted by hand. A mistake that gives one problem
is one row of `MISTAKES` (the edit of BASE, the line, the key, the message); the tests
after the table check what a row cannot say (several problems, side effects, overrides).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from lsexp.config import SweepConfig, load_config, run_identity, stable_hash
from lsexp.errors import ConfigError
from tests.conftest import REPO

BASE = """\
# a small, valid sweep
name: base
data:
  name: mnist
  root: /data/here
model:
  name: mlp
  hidden: [64]
train:
  epochs: 3
  lr: 0.1
  optimizer: sgd
sweep:
  alpha: [0.0, 0.1]
  seeds: [0, 1]
eval:
  n_bins: 15
  batch_size: 500
device: cpu
"""

SHIPPED = sorted(REPO.glob("configs/*.yaml"))


def edit(text: str, old: str, new: str) -> str:
    """`text` with the one occurrence of `old` replaced (a typo in a test fails loudly)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the `nth` line of `text` that contains `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} found on lines {hits}"
    return hits[nth - 1]


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    problems = info.value.problems
    assert problems, "a ConfigError must say what is wrong"
    assert all("\n" not in p for p in problems), problems
    return problems


def only_problem(path: Path, overrides: list[str] | None = None) -> str:
    problems = problems_of(path, overrides)
    assert len(problems) == 1, problems
    return problems[0]


# ---------------------------------------------------------------------------------------
# Configs that load
# ---------------------------------------------------------------------------------------


def test_quickstart_is_among_the_shipped_configs():
    assert REPO / "configs" / "quickstart.yaml" in SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_loads(path: Path):
    config = load_config(path)
    assert isinstance(config, SweepConfig)
    assert config.sweep.arms() and config.sweep.seeds


def test_quickstart_values():
    config = load_config(REPO / "configs" / "quickstart.yaml")
    assert config.name == "quickstart"
    assert config.data.name == "fashion_mnist_mini"
    assert config.model.name == "mlp"
    assert config.model.hidden == (256, 256)
    assert config.sweep.alpha == (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
    assert config.sweep.seeds == (0, 1, 2, 3, 4)


def test_base_loads_with_values_and_defaults(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.name == "base"
    assert config.data.root == "/data/here"
    assert config.model.hidden == (64,)
    assert config.train.epochs == 3
    assert config.train.batch_size == 128  # default
    assert config.sweep.alpha == (0.0, 0.1)
    assert config.sweep.seeds == (0, 1)
    assert config.eval.batch_size == 500
    assert config.device == "cpu"


# ---------------------------------------------------------------------------------------
# One mistake, one problem: the table
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """BASE with `old` replaced by `new` (`old` empty: `new` appended), which must give one
    problem, `FILE:LINE: key: message`, LINE being that of the first line containing `at`.

    `message` is matched whole, except that "…" stands for any text; "{line of X}" in it
    stands for the line of the first line containing X.
    """

    id: str
    old: str
    new: str
    at: str
    key: str
    message: str


def matches(message: str, pattern: str, text: str) -> bool:
    pattern = re.sub(r"\{line of (.+?)\}", lambda m: str(line_of(text, m[1])), pattern)
    regex = ".*".join(re.escape(part) for part in pattern.split("…"))
    return re.fullmatch(regex, message, flags=re.DOTALL) is not None


MODEL = "  name: mlp\n  hidden: [64]\n"
EVAL = "eval:\n  n_bins: 15\n  batch_size: 500\n"
ALPHA = "alpha: [0.0, 0.1]"
SEEDS = "seeds: [0, 1]"
NOT_UNIT = "alpha must be in [0, 1) (alpha=1 asks for the uniform distribution), got "
NAME_RULE = "use letters, digits, '_', '-' or '.' (it names the results folder)"

MISTAKES = [
    # YAML-level problems: the line of the offending text (PyYAML's own words after it)
    Mistake("yaml-syntax", "  lr: 0.1\n", "  lr: 0.1: 0.2\n", "lr: 0.1: 0.2",
            "YAML error", "mapping values are not allowed…"),
    Mistake("yaml-tab", "  n_bins: 15", "\tn_bins: 15", "n_bins", "YAML error", "…'\\t'…"),
    Mistake("yaml-control-character", "lr: 0.1", "lr: 0.1\x07", "lr: 0.1",
            "YAML error", "…#x0007…"),
    Mistake("yaml-non-scalar-key", "", "? [a, b]\n: 1\n", "? [a, b]", "YAML error", "…"),
    Mistake("duplicate-key-in-a-section", "  optimizer: sgd\n", "  optimizer: sgd\n  lr: 0.2\n",
            "lr: 0.2", "train.lr",
            "duplicate key (first set on line {line of lr: 0.1}); remove one of them"),
    Mistake("duplicate-top-level-section", "", "device: cuda\n", "device: cuda", "device",
            "duplicate key (first set on line {line of device: cpu})…"),
    Mistake("recursive-alias", "", "extra: &loop [*loop]\n", "extra:", "extra", "unknown key…"),
    # Unknown and missing keys, wrong types, misspelt values
    Mistake("unknown-top-level-key", "", "devise: cuda\n", "devise", "devise",
            "unknown key (did you mean 'device'?)"),
    Mistake("unknown-key-in-a-section", "  epochs: 3\n", "  epochs: 3\n  epoch: 4\n",
            "epoch: 4", "train.epoch", "unknown key (did you mean 'epochs'?)"),
    Mistake("unknown-key-no-close-match", "  n_bins: 15\n", "  n_bins: 15\n  zzz: 1\n", "zzz",
            "eval.zzz", "unknown key; known: n_bins, batch_size, tta"),
    # a missing top-level key is reported where the top-level mapping starts
    Mistake("missing-section", "model:\n" + MODEL, "", "name: base", "model",
            "required key is missing"),
    Mistake("missing-key-in-a-section", "  epochs: 3\n", "", "train:", "train.epochs",
            "required key is missing"),
    Mistake("wrong-type", "epochs: 3", "epochs: ten", "epochs: ten", "train.epochs",
            "…got 'ten'"),
    Mistake("wrong-type-in-a-list", ALPHA, "alpha: [a]", "alpha: [a]", "sweep.alpha.0",
            "…got 'a'"),
    Mistake("section-not-a-mapping", EVAL, "eval: 5\n", "eval: 5", "eval", "…got 5"),
    Mistake("misspelt-optimizer", "optimizer: sgd", "optimizer: adam", "optimizer: adam",
            "train.optimizer", "…got 'adam'…(did you mean 'adamw'?)"),
    Mistake("misspelt-model", "name: mlp", "name: cnnn", "name: cnnn", "model.name",
            "…got 'cnnn'…(did you mean 'cnn'?)"),
    Mistake("misspelt-dataset", "name: mnist", "name: mnsit", "name: mnsit", "data.name",
            "…got 'mnsit'…(did you mean 'mnist'?)"),
    # The sweep grid
    Mistake("alpha-1", ALPHA, "alpha: [0.0, 1.0]", "alpha:", "sweep.alpha", NOT_UNIT + "1.0"),
    Mistake("alpha-negative", ALPHA, "alpha: [0.0, -0.1]", "alpha:", "sweep.alpha",
            NOT_UNIT + "-0.1"),
    Mistake("alpha-above-1", ALPHA, "alpha: [0.0, 1.5]", "alpha:", "sweep.alpha",
            NOT_UNIT + "1.5"),
    Mistake("alpha-nan", ALPHA, "alpha: [0.0, .nan]", "alpha:", "sweep.alpha.1",
            "…finite number…"),
    Mistake("alpha-inf", ALPHA, "alpha: [0.0, .inf]", "alpha:", "sweep.alpha.1",
            "…finite number…"),
    Mistake("alpha-empty", ALPHA, "alpha: []", "alpha:", "sweep.alpha",
            "alpha list is empty…"),
    Mistake("alpha-duplicate", ALPHA, "alpha: [0.1, 0.2, 0.1]", "alpha:", "sweep.alpha",
            "duplicate alpha values: [0.1]"),
    Mistake("alpha-duplicate-across-types", ALPHA, "alpha: [0, 0.0]", "alpha:", "sweep.alpha",
            "duplicate alpha values…"),
    Mistake("alpha-not-a-list", ALPHA, "alpha: 0.1", "alpha:", "sweep.alpha", "…got 0.1"),
    Mistake("seeds-empty", SEEDS, "seeds: []", "seeds:", "sweep.seeds", "seeds list is empty…"),
    Mistake("seeds-duplicate", SEEDS, "seeds: [3, 1, 3]", "seeds:", "sweep.seeds",
            "duplicate seeds: [3]"),
    Mistake("seed-negative", SEEDS, "seeds: [0, -1]", "seeds:", "sweep.seeds.1",
            "…greater than or equal to 0, got -1"),
    # Rules across fields
    Mistake("depth-on-an-mlp", MODEL, MODEL + "  depth: 20\n", "model:", "model",
            "'depth' does not apply to model 'mlp'"),
    Mistake("width-on-an-mlp", MODEL, MODEL + "  width: 32\n", "model:", "model",
            "'width' does not apply to model 'mlp'"),
    Mistake("resnet-depth-21", MODEL, "  name: resnet\n  depth: 21\n", "model:", "model",
            "…6n+2…got 21"),
    Mistake("resnet-depth-19", MODEL, "  name: resnet\n  depth: 19\n", "model:", "model",
            "…6n+2…got 19"),
    Mistake("resnet-depth-2", MODEL, "  name: resnet\n  depth: 2\n", "model:", "model",
            "…6n+2…got 2"),
    Mistake("mlp-hidden-zero", "hidden: [64]", "hidden: [64, 0]", "hidden:", "model.hidden.1",
            "…greater than 0…"),
    Mistake("warmup-equals-epochs", "  epochs: 3\n", "  epochs: 3\n  warmup_epochs: 3\n",
            "train:", "train", "…warmup_epochs must be smaller than epochs…"),
    Mistake("warmup-above-epochs", "  epochs: 3\n", "  epochs: 3\n  warmup_epochs: 3.5\n",
            "train:", "train", "…warmup_epochs must be smaller than epochs…"),
    # Name
    Mistake("name-with-a-space", "name: base", "name: 'my sweep'", "name: ", "name",
            "…letters, digits…"),
    Mistake("name-going-up", "name: base", "name: ../escape", "name: ", "name",
            "…letters, digits…"),
    Mistake("name-starting-with-a-dash", "name: base", "name: -dash", "name: ", "name",
            "…letters, digits…"),
    Mistake("name-empty", "name: base", "name: ''", "name: ", "name", "…letters, digits…"),
    Mistake("name-with-a-slash", "name: base", "name: a/b", "name: ", "name",
            "…letters, digits…"),
]  # fmt: skip


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_one_mistake_is_one_problem_at_its_line(tmp_path, mistake: Mistake):
    text = edit(BASE, mistake.old, mistake.new) if mistake.old else BASE + mistake.new
    path = write(tmp_path, text)
    problem = only_problem(path)
    prefix = f"{path}:{line_of(text, mistake.at)}: {mistake.key}: "
    assert problem.startswith(prefix), problem
    assert matches(problem[len(prefix) :], mistake.message, text), (mistake.message, problem)


def test_the_table_of_mistakes_checks_what_it_says():
    # `matches` is what every row relies on: it must reject as well as accept.
    text = "a\nlr: 0.1\n"
    assert matches("got 'ten'", "…got 'ten'", text)
    assert not matches("got 'ten' (did you mean 'x'?)", "…got 'ten'", text)
    assert not matches("xgot 'ten'", "got 'ten'", text)
    assert matches("in [0, 1) (x), got 1.0", "in [0, 1) (x), got 1.0", text)
    assert matches("first set on line 2; remove", "first set on line {line of lr: 0.1}; …", text)
    assert not matches("first set on line 1; remove", "first set on line {line of lr}; …", text)
    assert len({m.id for m in MISTAKES}) == len(MISTAKES)


# ---------------------------------------------------------------------------------------
# YAML-level problems the table cannot hold (several problems, side effects, no BASE)
# ---------------------------------------------------------------------------------------


def test_duplicate_key_is_reported_with_validation_problems(tmp_path):
    text = edit(BASE, "  optimizer: sgd\n", "  optimizer: sgd\n  lr: 0.2\n")
    text = edit(text, "epochs: 3", "epochs: ten")
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2, problems
    assert any("train.lr: duplicate key" in p for p in problems)
    assert any("train.epochs:" in p and "'ten'" in p for p in problems)


def test_python_tag_is_rejected_and_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    text = edit(BASE, "name: base", f'name: !!python/object/apply:os.system ["touch {marker}"]')
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}:{line_of(text, 'python/object')}: YAML error: "), problem
    assert "not allowed" in problem
    assert not marker.exists()


def test_duplicate_key_under_an_alias_is_reported_once(tmp_path):
    text = BASE + "x-common: &common {lr: 0.1, lr: 0.2}\nx-other: *common\n"
    problems = problems_of(write(tmp_path, text))
    assert sum("duplicate key" in p for p in problems) == 1, problems


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n"])
def test_top_level_must_be_a_mapping(tmp_path, text):
    path = write(tmp_path, text)
    problem = only_problem(path)
    assert problem.startswith(f"{path}: expected a mapping"), problem


def test_empty_file_reports_every_required_section(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    problems = problems_of(path)
    assert sorted(problems) == sorted(
        f"{path}: {key}: required key is missing" for key in ("data", "model", "train", "sweep")
    )


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope" / "missing.yaml"
    assert only_problem(path) == f"{path}: config file not found"


# ---------------------------------------------------------------------------------------
# Rules across fields
# ---------------------------------------------------------------------------------------


def resnet(depth: int) -> str:
    return edit(BASE, "  name: mlp\n  hidden: [64]\n", f"  name: resnet\n  depth: {depth}\n")


@pytest.mark.parametrize("depth", [8, 20, 56, 110])
def test_resnet_depths_that_build(tmp_path, depth):
    assert load_config(write(tmp_path, resnet(depth))).model.depth == depth


def test_warmup_shorter_than_training_loads(tmp_path):
    text = edit(BASE, "  epochs: 3\n", "  epochs: 3\n  warmup_epochs: 2.5\n")
    assert load_config(write(tmp_path, text)).train.warmup_epochs == 2.5


def test_several_problems_are_reported_together(tmp_path):
    text = edit(BASE, "  root: /data/here\n", "  root: /data/here\n  rooot: x\n")
    text = edit(text, "epochs: 3", "epochs: ten")
    text = edit(text, "alpha: [0.0, 0.1]", "alpha: [0.0, 1.5]")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert str(info.value).splitlines() == problems
    expected = [
        f"{path}:{line_of(text, 'rooot')}: data.rooot: unknown key",
        f"{path}:{line_of(text, 'epochs: ten')}: train.epochs: ",
        f"{path}:{line_of(text, 'alpha:')}: sweep.alpha: ",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)


# ---------------------------------------------------------------------------------------
# Name
# ---------------------------------------------------------------------------------------


def test_name_defaults_to_the_file_stem(tmp_path):
    path = write(tmp_path, edit(BASE, "name: base\n", ""), name="alpha-grid_v2.yaml")
    assert load_config(path).name == "alpha-grid_v2"


def test_name_in_the_file_wins_over_the_stem(tmp_path):
    assert load_config(write(tmp_path, BASE, name="other.yaml")).name == "base"


def test_bad_file_stem_is_reported_as_the_name(tmp_path):
    path = write(tmp_path, edit(BASE, "name: base\n", ""), name="my sweep.yaml")
    problem = only_problem(path)
    assert problem.startswith(f"{path}:") and ": name: use letters, digits" in problem, problem


# ---------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------


def test_overrides_are_applied(tmp_path):
    path = write(tmp_path, BASE)
    config = load_config(
        path, ["train.epochs=2", "sweep.seeds=[0,1,5]", "sweep.alpha=[0, 0.3]", "device=auto"]
    )
    assert config.train.epochs == 2
    assert config.sweep.seeds == (0, 1, 5)
    assert config.sweep.alpha == (0.0, 0.3)
    assert config.device == "auto"
    assert load_config(path).train.epochs == 3  # the file itself is untouched


def test_override_can_add_keys_and_sections(tmp_path):
    text = edit(BASE, "eval:\n  n_bins: 15\n  batch_size: 500\n", "")
    config = load_config(write(tmp_path, text), ["eval.n_bins=7", "train.momentum=0.5"])
    assert config.eval.n_bins == 7
    assert config.train.momentum == 0.5


def test_later_override_wins(tmp_path):
    config = load_config(write(tmp_path, BASE), ["train.epochs=2", "train.epochs=5"])
    assert config.train.epochs == 5


def test_bad_override_value_names_the_override_not_a_line(tmp_path):
    problem = only_problem(write(tmp_path, BASE), ["train.epochs=x"])
    assert problem.startswith("override 'train.epochs=x': train.epochs: "), problem
    assert problem.endswith("got 'x'"), problem


def test_bad_override_of_a_list(tmp_path):
    problem = only_problem(write(tmp_path, BASE), ["sweep.alpha=[0, 1]"])
    assert problem.startswith("override 'sweep.alpha=[0, 1]': sweep.alpha: "), problem
    assert "[0, 1)" in problem


def test_override_problems_are_reported_with_file_problems(tmp_path):
    text = edit(BASE, "seeds: [0, 1]", "seeds: [0, 0]")
    path = write(tmp_path, text)
    problems = problems_of(path, ["train.lr=-1"])
    assert len(problems) == 2, problems
    assert any(p.startswith("override 'train.lr=-1': train.lr: ") for p in problems)
    assert any(p.startswith(f"{path}:{line_of(text, 'seeds:')}: sweep.seeds: ") for p in problems)


@pytest.mark.parametrize("override", ["foo", "train.epochs"])
def test_override_without_equals(tmp_path, override):
    problem = only_problem(write(tmp_path, BASE), [override])
    assert problem.startswith(f"override '{override}': expected KEY=VALUE"), problem


@pytest.mark.parametrize("override", ["train..epochs=2", ".epochs=2", "=2"])
def test_override_with_an_empty_key_part(tmp_path, override):
    problem = only_problem(write(tmp_path, BASE), [override])
    assert problem.startswith(f"override '{override}': empty part in key"), problem


def test_override_value_that_is_not_yaml(tmp_path):
    problem = only_problem(write(tmp_path, BASE), ["sweep.seeds=[0, 1"])
    assert problem.startswith("override 'sweep.seeds=[0, 1': value is not valid YAML"), problem


def test_python_tag_in_an_override_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    override = f'train.epochs=!!python/object/apply:os.system ["touch {marker}"]'
    problem = only_problem(write(tmp_path, BASE), [override])
    assert problem.startswith(f"override '{override}': value is not valid YAML"), problem
    assert not marker.exists()


def test_override_through_a_scalar(tmp_path):
    assert only_problem(write(tmp_path, BASE), ["train.epochs.x=1"]) == (
        "override 'train.epochs.x=1': 'train.epochs' is a value, not a section"
    )


@pytest.mark.parametrize(
    ("override", "key", "suggestion"),
    [("train.epoch=3", "train.epoch", "epochs"), ("devise=cpu", "devise", "device")],
)
def test_unknown_key_via_override(tmp_path, override, key, suggestion):
    assert only_problem(write(tmp_path, BASE), [override]) == (
        f"override '{override}': {key}: unknown key (did you mean '{suggestion}'?)"
    )


# ---------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------


@pytest.fixture
def base_path(tmp_path) -> Path:
    return write(tmp_path, BASE)


def identity_hash(path: Path, *overrides: str) -> str:
    return stable_hash(load_config(path, list(overrides)).identity())


def test_identity_sections(base_path):
    identity = load_config(base_path).identity()
    assert set(identity) == {"data", "model", "train", "eval"}
    assert "root" not in identity["data"]
    assert "batch_size" not in identity["eval"]
    assert identity["eval"]["n_bins"] == 15
    assert identity["train"]["lr"] == 0.1


@pytest.mark.parametrize(
    "override",
    [
        "data.root=/elsewhere",
        "device=cuda",
        "eval.batch_size=10",
        "sweep.alpha=[0.3]",
        "sweep.seeds=[7, 8]",
        "name=renamed",
    ],
)
def test_identity_ignores_where_and_how_fast(base_path, override):
    assert identity_hash(base_path, override) == identity_hash(base_path)


@pytest.mark.parametrize(
    "override",
    ["train.lr=0.2", "train.epochs=4", "data.split_seed=1", "model.hidden=[65]"],
)
def test_identity_changes_with_what_is_computed(base_path, override):
    assert identity_hash(base_path, override) != identity_hash(base_path)


def test_report_only_settings_leave_the_identity_alone(base_path):
    # eval.n_bins is recomputed from the saved logits by `lsexp report --n-bins`.
    assert identity_hash(base_path, "eval.n_bins=10") == identity_hash(base_path)


def test_run_identity_differs_per_alpha_and_seed(base_path):
    config = load_config(base_path)
    hashes = {
        stable_hash(run_identity(config, alpha, seed)) for alpha in (0.0, 0.1) for seed in (0, 1)
    }
    assert len(hashes) == 4
    assert run_identity(config, 0.1, 1) == {**config.identity(), "alpha": 0.1, "seed": 1}


def test_run_identity_is_stable_across_number_types(base_path):
    config = load_config(base_path)
    assert stable_hash(run_identity(config, 0, 1)) == stable_hash(run_identity(config, 0.0, 1))


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert len(stable_hash({"a": 1})) == 12
