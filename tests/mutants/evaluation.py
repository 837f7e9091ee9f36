"""Mutants of the evaluation protocols: the community's gallery exclusions, the CMC kind
(evaluation/ranking.py) and the query/gallery modalities (data/protocols/lists.py)."""

from __future__ import annotations

import numpy as np

from vireid.data.protocols import lists
from vireid.evaluation import ranking

from . import mutant, replace

R = "tests/test_ranking.py::"


@mutant(
    "eval.sysu_cam3_keeps_cam2",
    "SYSU-MM01: cam3 queries keep the cam2 gallery images (same room), which the official "
    "evaluation removes",
    tests=[R + "test_sysu_cam3_skips_cam2_whatever_the_identity"],
    fast=True,
)
def _(mp):
    keep = ranking.keep_mask
    mp.setattr(ranking, "keep_mask", lambda rule, *a: None if rule == "sysu" else keep(rule, *a))


@mutant(
    "eval.llcm_same_camera_kept",
    "LLCM: gallery images of the query's identity and camera are kept",
    tests=[R + "test_llcm_removes_same_id_same_camera"],
    fast=True,
)
def _(mp):
    keep = ranking.keep_mask
    mp.setattr(ranking, "keep_mask", lambda rule, *a: None if rule == "llcm" else keep(rule, *a))


@mutant(
    "eval.image_cmc_for_sysu",
    "SYSU/LLCM CMC counted over gallery images instead of unique identities",
    tests=[R + "test_unique_id_vs_standard_cmc"],
    fast=True,
)
def _(mp):
    def image_rank(gp_dense, keep, first, n_ids):
        if keep is None:
            return first
        return np.cumsum(keep, axis=1)[np.arange(len(first)), first] - 1

    mp.setattr(ranking, "_unique_id_rank", image_rank)


@mutant(
    "eval.sysu_gallery_has_infrared",
    "SYSU-MM01 all-search: the gallery also draws from the infrared cameras (3, 6), the "
    "queries' own modality",
    tests=["tests/test_protocols.py::test_sysu_query_and_counts"],
    fast=True,
)
def _(mp):
    mp.setitem(lists.SYSU_GALLERY_CAMS, "all", (1, 2, 3, 4, 5, 6))


@mutant(
    "eval.ties_in_list_order",
    "tied distances ranked in the gallery's list order (the community's argsort), which is "
    "sorted by identity: a constant-feature model scores above chance",
    tests=[
        R + "test_constant_features_score_at_chance",
        "tests/test_reliability_eval.py::test_constant_features_score_at_chance_through_the_cli",
    ],
    fast=True,
)
def _(mp):
    mp.setattr(ranking, "rank_gallery", lambda dist, sort_kind=None, tie_perm=None: (
        np.argsort(dist, axis=1, kind=sort_kind)
    ))  # fmt: skip


@mutant(
    "eval.non_finite_features_scored",
    "features holding NaN/Inf are ranked instead of refused (NaN distances tie, and ties "
    "fall back to an order)",
    tests=[
        R + "test_non_finite_features_and_distances_are_refused",
        "tests/test_reliability_eval.py::test_bad_arrays_are_one_line",
    ],
    fast=True,
)
def _(mp):
    replace(mp, ranking, "non_finite_rows", lambda x: np.zeros(len(x), bool))
