"""Recipe chains: a recipe that starts from another recipe's checkpoint declares it.

    # configs/unsupervised/adca_sysu.yaml
    train:
      init_from: recipe:cluster_contrast_sysu.yaml

A *checkpoint reference* (``train.init_from``, or any other key naming a vireid checkpoint)
is either

* ``recipe:PATH``: the ``last.pt`` in the ``output_dir`` of the recipe at PATH. PATH is
  relative to the YAML file that writes it (as ``_base_``); on the command line, relative
  to the current directory. The loader stores it as an absolute path.
* a plain path to a checkpoint file.

At config load the producing model (the referenced recipe's ``model`` section, or the
config stored in an existing checkpoint) is compared with the recipe's own: a checkpoint
that cannot initialise this model is refused there, naming both architectures, instead of
failing (or silently half-loading) deep inside weight loading hours later. Only
``model.pretrained`` may differ: it says how the producer was initialised, not what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loader import ConfigError, load_yaml_tree, validate_config

RECIPE_PREFIX = "recipe:"
CHECKPOINT_FILE = "last.pt"  # engine.checkpoint.CHECKPOINT_NAME (no engine import here)
IGNORED_MODEL_KEYS = ("pretrained",)


class ChainError(ConfigError):
    """A checkpoint reference is malformed, circular, or names an incompatible model."""


@dataclass(frozen=True)
class CheckpointRef:
    """A resolved checkpoint reference.

    ``path``: the checkpoint file (it may not exist yet: the producing recipe has not run).
    ``recipe``: the producing recipe for ``recipe:`` references, else None.
    ``model``: the producer's model section (a dict as in ``config.yaml``), or None when
    a plain path does not exist yet (nothing to compare)."""

    value: str
    path: Path
    recipe: Path | None
    model: dict | None

    def missing_message(self, key: str = "train.init_from") -> str:
        """The one-line error for a reference whose checkpoint does not exist."""
        if self.recipe is None:
            return f"{key}={self.value}: checkpoint {self.path} does not exist"
        return (
            f"{key}={self.value}: {self.recipe.name}'s checkpoint {self.path} does not exist; "
            f"train that recipe first (vireid train {self.recipe}) or set {key} to a checkpoint"
        )


def is_recipe_ref(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(RECIPE_PREFIX)


def absolutize_refs(data: Any, base_dir: Path) -> Any:
    """Every ``recipe:`` value in a YAML tree made absolute against ``base_dir`` (the
    directory of the file that wrote it), so references survive ``_base_`` merging."""
    if isinstance(data, dict):
        return {k: absolutize_refs(v, base_dir) for k, v in data.items()}
    if isinstance(data, list):
        return [absolutize_refs(v, base_dir) for v in data]
    if is_recipe_ref(data):
        target = Path(data[len(RECIPE_PREFIX) :]).expanduser()
        return RECIPE_PREFIX + str(target if target.is_absolute() else base_dir / target)
    return data


def _recipe_path(value: str, key: str) -> Path:
    raw = value[len(RECIPE_PREFIX) :].strip()
    if not raw:
        raise ChainError(f"{key}={value!r}: expected recipe:PATH to a YAML recipe")
    return Path(raw).expanduser().resolve()  # relative here = from the command line: cwd


def _model_of_recipe(path: Path, key: str, seen: tuple[Path, ...]):
    """(output_dir, model dict) of the recipe at ``path``, its own chain checked first."""
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ChainError(f"{key}: circular recipe chain: {chain}")
    try:
        cfg = validate_config(load_yaml_tree(path))
    except ConfigError as e:
        raise ChainError(f"{key}=recipe:{path}: the producing recipe does not load: {e}") from None
    check_chain(cfg, (*seen, path))
    return Path(cfg.output_dir), cfg.model.model_dump(mode="json")


def _model_of_checkpoint(path: Path, key: str) -> dict:
    from ..engine.checkpoint import CheckpointError, read_checkpoint_config

    try:
        return dict(read_checkpoint_config(path).get("model") or {})
    except CheckpointError as e:
        raise ChainError(f"{key}={path}: {e}") from None


def resolve_checkpoint(
    value: str | Path, key: str = "train.init_from", seen: tuple[Path, ...] = ()
) -> CheckpointRef:
    """Resolve a checkpoint reference (``recipe:PATH`` or a path) without loading weights.

    ``seen``: recipes already on the chain (cycle detection)."""
    text = str(value)
    if is_recipe_ref(text):
        recipe = _recipe_path(text, key)
        out_dir, model = _model_of_recipe(recipe, key, seen)
        return CheckpointRef(RECIPE_PREFIX + str(recipe), out_dir / CHECKPOINT_FILE, recipe, model)
    path = Path(text).expanduser()
    model = _model_of_checkpoint(path, key) if path.is_file() else None
    return CheckpointRef(text, path, None, model)


def describe_model(model: dict) -> str:
    """``two_stream resnet50 (width 1, non_local on, modality_specific stem, ...)``."""
    skip = ("name", "arch", *IGNORED_MODEL_KEYS)
    rest = ", ".join(f"{k} {_fmt(v)}" for k, v in model.items() if k not in skip)
    return f"{model.get('name', '?')} {model.get('arch', '?')} ({rest})"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _complete(model: dict) -> dict:
    """A stored model section with the schema's defaults for keys it predates."""
    try:
        return validate_config({"model": dict(model)}).model.model_dump(mode="json")
    except ConfigError:
        return dict(model)  # a section from another version: compare what both have


def check_model_compat(ref: CheckpointRef, model: dict, key: str = "train.init_from") -> None:
    """Raise ChainError when ``ref``'s producer has another model than ``model``."""
    if ref.model is None:
        return
    theirs, ours = _complete(ref.model), _complete(model)
    diff = [
        k
        for k in sorted(set(theirs) & set(ours))
        if k not in IGNORED_MODEL_KEYS and theirs[k] != ours[k]
    ]
    if not diff:
        return
    where = f"recipe {ref.recipe}" if ref.recipe else f"checkpoint {ref.path}"
    keys = ", ".join(f"model.{k} {_fmt(theirs[k])} there vs {_fmt(ours[k])} here" for k in diff)
    raise ChainError(
        f"{key}={ref.value}: that checkpoint's model cannot initialise this recipe's ({keys}). "
        f"Checkpoint ({where}): {describe_model(theirs)}; this recipe: {describe_model(ours)}"
    )


# The config keys that name an earlier stage's checkpoint: its weights initialise this
# model (init_from) or its features give this run's offline pseudo-labels (MMM's stage B,
# labels_from: the network is built as this recipe's model, so it must match too).
CHAIN_KEYS = (("train", "init_from"), ("method", "labels_from"))


def chain_refs(cfg):
    """(section object, field, dotted key, value) of every chain key set in ``cfg``."""
    for section, field in CHAIN_KEYS:
        sec = getattr(cfg, section)
        value = getattr(sec, field, None)
        if value is not None:
            yield sec, field, f"{section}.{field}", value


def check_chain(cfg, seen: tuple[Path, ...] = ()) -> None:
    """Resolve and check every chain key of ``cfg`` (``CHAIN_KEYS``); a relative
    ``recipe:`` reference (from the command line) is made absolute in ``cfg``."""
    for sec, field, key, value in chain_refs(cfg):
        ref = resolve_checkpoint(value, key, seen)
        if ref.recipe is not None and ref.value != value:
            setattr(sec, field, ref.value)
        check_model_compat(ref, cfg.model.model_dump(mode="json"), key)
