"""YAML recipes with ``_base_`` inheritance and dotted command-line overrides.

    cfg = load_config("configs/supervised/agw_sysu.yaml", ["train.lr=0.05"])

Resolution order: bases (in list order, each resolved recursively) → the file itself →
overrides. Dicts merge key by key; any other value replaces. Keys are checked against the
schema *before* type validation so an unknown key is reported with its full path and the
closest valid keys, whichever union member it lives in.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from .checks import CrossCheckError, check_run
from .schema import RunCfg


class ConfigError(ValueError):
    """A config file, key or value is wrong; the message says which and what was expected."""


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base`` key by key. A section that switches to another ``name``
    (e.g. ``method: {name: mmm}`` over a ``cluster_contrast`` base) replaces the base
    section instead of merging with it: the other member's keys would not be valid."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        if (
            isinstance(v, dict)
            and isinstance(old, dict)
            and ("name" not in v or "name" not in old or v["name"] == old["name"])
        ):
            out[k] = deep_merge(old, v)
        else:
            out[k] = v
    return out


def load_yaml_tree(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """Read ``path`` and merge its ``_base_`` files (paths relative to the file)."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ConfigError(f"circular _base_ inheritance: {chain}")
    from .chains import absolutize_refs  # chains imports this module

    data = absolutize_refs(_read_yaml(path), path.parent)  # recipe: refs are file-relative
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_ must be a path or a list of paths")
    merged: dict = {}
    for b in bases:
        merged = deep_merge(merged, load_yaml_tree(path.parent / b, (*_seen, path)))
    return deep_merge(merged, data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a","b","c"], value parsed as a YAML scalar)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty key segment in {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = dict(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for p in parts[:-1]:
            child = node.get(p)
            child = dict(child) if isinstance(child, dict) else {}
            node[p] = child
            node = child
        node[parts[-1]] = value
    return data


# ------------------------------------------------------------------ key checking
def _model_classes(annotation) -> list[type[BaseModel]]:
    """The BaseModel classes an annotation can hold (unwrapping Annotated/Optional/Union)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(get_args(annotation)[0])
    if origin is not None and get_args(annotation):
        out: list[type[BaseModel]] = []
        for a in get_args(annotation):
            out += _model_classes(a)
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _pick_member(classes: list[type[BaseModel]], data: dict, path: str) -> type[BaseModel]:
    if len(classes) == 1 and "name" not in data:
        return classes[0]
    tags = {}
    for c in classes:
        f = c.model_fields.get("name")
        if f is not None:
            tags[f.default] = c
    if not tags:
        return classes[0]
    name = data.get("name", next(iter(tags)) if len(tags) == 1 else None)
    if name not in tags:
        close = difflib.get_close_matches(str(name), [str(t) for t in tags], n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ConfigError(
            f"{path}.name: unknown value {name!r}.{hint} Expected one of: "
            f"{', '.join(sorted(map(str, tags)))}"
        )
    return tags[name]


def check_keys(model: type[BaseModel], data: Any, path: str = "") -> None:
    """Raise ConfigError for the first unknown key, naming its full path and close matches."""
    if not isinstance(data, dict):
        return
    fields = model.model_fields
    for key, value in data.items():
        full = f"{path}.{key}" if path else str(key)
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(f'{path}.{c}' if path else c) for c in close)}?"
            raise ConfigError(
                f"unknown config key {full!r}.{hint if close else ''} "
                f"Valid keys{' under ' + repr(path) if path else ''}: {', '.join(sorted(fields))}"
            )
        classes = _model_classes(fields[key].annotation)
        if classes and isinstance(value, dict):
            check_keys(_pick_member(classes, value, full), value, full)


def _clean_loc(model: type[BaseModel] | None, loc: tuple) -> str:
    """Dotted key path of a pydantic error, without the union tags pydantic inserts."""
    out: list[str] = []
    parts = list(loc)
    while parts:
        p = parts.pop(0)
        out.append(str(p))
        field = model.model_fields.get(p) if model is not None and isinstance(p, str) else None
        classes = _model_classes(field.annotation) if field is not None else []
        model = None
        if len(classes) > 1 and parts:
            tag = parts.pop(0)  # discriminated union: pydantic adds the tag to the path
            model = next((c for c in classes if c.model_fields["name"].default == tag), None)
        elif len(classes) == 1:
            model = classes[0]
    return ".".join(out)


def _format_validation(err: ValidationError, model: type[BaseModel]) -> str:
    lines = [
        f"  {_clean_loc(model, e['loc'])}: {e['msg']} (got {e.get('input')!r})"
        for e in err.errors()
    ]
    return "invalid config values:\n" + "\n".join(lines)


def fill_tags(model: type[BaseModel], data: Any) -> None:
    """A union section given without ``name`` (e.g. only ``model.arch=resnet18``) takes
    the default member's name, so partial overrides work like for any other section."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None or not isinstance(value, dict):
            continue
        classes = _model_classes(field.annotation)
        if "name" not in value and classes and "name" in classes[0].model_fields:
            default = field.get_default(call_default_factory=True)
            value["name"] = getattr(default, "name", classes[0].model_fields["name"].default)
        if classes:
            fill_tags(_pick_member(classes, value, key), value)


def validate_config(data: dict, model: type[BaseModel] = RunCfg) -> BaseModel:
    fill_tags(model, data)
    check_keys(model, data)
    try:
        cfg = model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, model)) from None
    if isinstance(cfg, RunCfg):
        try:
            check_run(cfg)
        except CrossCheckError as e:
            raise ConfigError(str(e)) from None
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunCfg:
    """``path``: a YAML file, or a shipped recipe's name (``config/recipes.py``)."""
    if path is not None:
        from .recipes import resolve_recipe

        path = resolve_recipe(path)
    data = load_yaml_tree(path) if path is not None else {}
    if path is not None and not data:  # every key would silently take its default
        raise ConfigError(
            f"{path}: empty config; expected a recipe (e.g. `_base_: <a file under configs/>` "
            "and the keys you change)"
        )
    data = apply_overrides(data, overrides or [])
    cfg = validate_config(data)
    from .chains import check_chain  # chains imports this module

    check_chain(cfg, (Path(path).resolve(),) if path is not None else ())
    return cfg  # type: ignore[return-value]


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
