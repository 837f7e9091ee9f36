"""Check, before training, that the final evaluation will be able to read its images.

The test lists are drawn only when a run is evaluated, so an unreadable test-identity
folder or image used to surface after the last epoch. Listing the protocol's folders and
one ``os.access`` per image (no decoding) finds it in seconds, before any step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..datasets.errors import DatasetError
from .lists import query_gallery


def check_readable(protocol: str, root, trials: Iterable[int], manifest=None) -> int:
    """Every query and gallery image of ``protocol`` over ``trials`` can be read; returns
    how many there are. ``DatasetError`` naming the first folder or file that cannot."""
    paths: set[str] = set()
    for t in trials:
        try:
            q, g = query_gallery(protocol, root, t, manifest)
        except PermissionError as e:  # a folder the lists walk
            raise DatasetError(
                f"{e.filename}: cannot read this test folder ({e.strerror}); the evaluation "
                f"of {protocol} reads it: fix its permissions before training"
            ) from None
        paths.update(s.path for s in (*q, *g))
    for path in sorted(paths):
        if not os.access(path, os.R_OK):
            what = "no such file" if not os.path.exists(path) else "permission denied"
            raise DatasetError(
                f"{path}: cannot read this test image ({what}); the evaluation of {protocol} "
                "reads it: fix it before training"
            )
    return len(paths)
