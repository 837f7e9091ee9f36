"""Ship the recipes inside the package: the wheel gets ``configs/`` as ``vireid/configs``.

The recipes stay at the repository's root (``configs/``, as the README and every doc
name them); a checkout finds them there and a wheel install inside the package
(``vireid/config/recipes.py`` looks in both). Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithRecipes(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "vireid" / "configs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / "configs", target, ignore=shutil.ignore_patterns("*.pyc"))


setup(cmdclass={"build_py": BuildWithRecipes})
