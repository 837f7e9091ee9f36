import os
import random

import pytest

from vireid.data.datasets import DatasetError
from vireid.data.protocols import get_protocol, list_protocols, query_gallery
from vireid.data.records import Modality


def _ids(root):
    return sorted(int(x) for x in (root / "exp" / "test_id.txt").read_text().strip().split(","))


def independent_gallery(root, cams, trial, shots):
    """Re-implementation of AGW's process_gallery_sysu (global random reseeded), written
    from the protocol description with os.listdir and string paths."""
    random.seed(trial)
    files_rgb = []
    for pid in ["%04d" % x for x in _ids(root)]:
        for cam in cams:
            img_dir = os.path.join(str(root), cam, pid)
            if os.path.isdir(img_dir):
                new_files = sorted([img_dir + "/" + i for i in os.listdir(img_dir)])
                if shots == 1:
                    files_rgb.append(random.choice(new_files))
                else:
                    files_rgb += random.sample(new_files, shots)
    return files_rgb


@pytest.mark.parametrize(
    "mode,cams", [("all", ["cam1", "cam2", "cam4", "cam5"]), ("indoor", ["cam1", "cam2"])]
)
@pytest.mark.parametrize("shot,n", [("single", 1), ("multi", 10)])
def test_sysu_gallery_draws_match_the_community(sysu_root, mode, cams, shot, n):
    for trial in (0, 3, 9):
        _, gallery = query_gallery(f"sysu/{mode}/{shot}", sysu_root, trial)
        assert [s.path for s in gallery] == independent_gallery(sysu_root, cams, trial, n)


def test_sysu_query_and_counts(sysu_root):
    q, g_all = query_gallery("sysu/all/single", sysu_root, 0)
    q2, g_in = query_gallery("sysu/indoor/single", sysu_root, 0)
    assert [s.path for s in q] == [s.path for s in q2]  # same queries for both modes
    ids = _ids(sysu_root)
    expected_q = sum(
        len(os.listdir(sysu_root / f"cam{c}" / f"{p:04d}"))
        for p in ids
        for c in (3, 6)
        if (sysu_root / f"cam{c}" / f"{p:04d}").is_dir()
    )
    assert len(q) == expected_q
    assert all(s.modality is Modality.INFRARED and s.camid in (3, 6) for s in q)
    n_dirs = lambda cams: sum(
        (sysu_root / f"cam{c}" / f"{p:04d}").is_dir() for p in ids for c in cams
    )
    assert len(g_all) == n_dirs((1, 2, 4, 5)) and len(g_in) == n_dirs((1, 2))
    assert {s.camid for s in g_in} <= {1, 2}
    _, g_multi = query_gallery("sysu/all/multi", sysu_root, 0)
    assert len(g_multi) == 10 * len(g_all)


def test_trials_change_the_gallery_only(sysu_root):
    q0, g0 = query_gallery("sysu/all/single", sysu_root, 0)
    q1, g1 = query_gallery("sysu/all/single", sysu_root, 1)
    assert q0 == q1 and g0 != g1
    with pytest.raises(DatasetError, match="trial 10 not in 0..9"):
        query_gallery("sysu/all/single", sysu_root, 10)


def test_regdb_role_swap(regdb_root):
    q, g = query_gallery("regdb/v2t", regdb_root, 4)
    q2, g2 = query_gallery("regdb/t2v", regdb_root, 4)
    assert q == g2 and g == q2
    assert {s.modality for s in q} == {Modality.VISIBLE}
    with pytest.raises(DatasetError, match="trial 0"):
        query_gallery("regdb/v2t", regdb_root, 0)


def test_llcm_lists(llcm_root):
    q, g = query_gallery("llcm/i2v", llcm_root, 0)
    assert {s.modality for s in q} == {Modality.INFRARED}
    assert {s.modality for s in g} == {Modality.VISIBLE}
    pairs = [(s.pid, s.camid) for s in g]
    assert len(pairs) == len(set(pairs))  # one image per (id, camera)
    # community VIS->IR: sampled NIR probes against all VIS images
    q2, g2 = query_gallery("llcm/v2i", llcm_root, 0)
    assert {s.modality for s in q2} == {Modality.INFRARED}
    assert len({(s.pid, s.camid) for s in q2}) == len(q2)
    assert len(g2) == len(list((llcm_root / "test_vis").rglob("*.jpg")))


def test_protocol_specs():
    assert len(list_protocols()) == 9
    spec = get_protocol("sysu/indoor/multi")
    assert (spec.rule, spec.shots, spec.trials) == ("sysu", 10, tuple(range(10)))
    assert get_protocol("regdb/t2v").trial_is_split
