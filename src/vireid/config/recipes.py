"""Find a recipe from what a user types: a YAML path, the ``configs/…`` path of the
README (also from a wheel install, where no ``configs/`` folder exists), or a name
(``mmm_sysu``, ``quickstart/agw_synth``) looked up among the recipes shipped inside the
package (``vireid/configs``)."""

from __future__ import annotations

import difflib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # src/vireid (or site-packages/vireid)


def recipe_roots() -> list[Path]:
    """Where shipped recipes live: inside the package, and a checkout's ``configs/``."""
    roots = [PACKAGE / "configs", PACKAGE.parents[1] / "configs"]
    return [r for r in roots if r.is_dir()]


def list_recipes() -> list[str]:
    """Every shipped recipe by name, relative to its folder without ``.yaml``
    (``unsupervised/mmm_sysu``); ``_base_`` files are not recipes."""
    names: set[str] = set()
    for root in recipe_roots():
        for p in root.rglob("*.yaml"):
            rel = p.relative_to(root).with_suffix("").as_posix()
            if not rel.startswith("_base_/"):
                names.add(rel)
    return sorted(names)


def resolve_recipe(text: str | Path) -> Path:
    """The recipe file for ``text``; a path that exists wins. Raises ``ValueError`` (the
    loader's ConfigError) naming close recipes when nothing matches."""
    from .loader import ConfigError

    path = Path(text)
    if path.is_file():
        return path
    rel = path.as_posix().removeprefix("./")
    rel = rel.removeprefix("configs/")  # the README's paths, from anywhere
    for root in recipe_roots():
        for cand in (root / rel, root / f"{rel}.yaml"):
            if cand.is_file():
                return cand
    if "/" not in rel:  # a bare name: unique among every folder's recipes
        stem = rel.removesuffix(".yaml")
        found = [n for n in list_recipes() if n.rsplit("/", 1)[-1] == stem]
        if len(found) == 1:
            return resolve_recipe(found[0])
        if len(found) > 1:
            raise ConfigError(f"recipe {text!r} is ambiguous: {', '.join(found)}")
    names = list_recipes()
    close = difflib.get_close_matches(rel.removesuffix(".yaml"), names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"config file not found: {path}{hint} (a path, or a shipped recipe's name: "
        "`vireid list recipes`)"
    )
