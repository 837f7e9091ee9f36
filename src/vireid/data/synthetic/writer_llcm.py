"""Write the synthetic benchmark in LLCM's layout (DEEN's ``data_manager.py``):

    idx/test_id.txt                          one comma-separated line of test ids
    idx/train_vis.txt, idx/train_nir.txt     '<relative path> <label>' per line
    vis/<pid:04d>/<pid:04d>_c<NN>_s<seq>_f<frame>_vis.jpg             (training; nir/ alike)
    test_vis/cam<N>/<pid:04d>/<pid:04d>_c<NN>_s<seq>_f<frame>_vis.jpg  (test_nir/ alike)

LLCM's nine cameras switch between visible (day) and near-infrared (night) capture, so a
camera's visible and infrared views share its scene (same background geometry); there is
no NIR camera 3. Labels in the training lists are 0..N−1 over the sorted training ids.
About a third of the identities are test identities (351 of 1,064 in LLCM).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .identity import sample_camera, sample_identity
from .render import Canvas, render, sample_pose, view_mix
from .spec import SynthSpec
from .writer import _rng, _save

VIS_CAMS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
NIR_CAMS = (1, 2, 4, 5, 6, 7, 8, 9)


def write_llcm(
    out: str | Path, spec: SynthSpec = SynthSpec(), progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    out = Path(out)
    canvas = Canvas(spec.height, spec.width)
    # one scene per camera, seen in both modalities (same rng key → same background)
    cams = {
        (cid, ir): sample_camera(cid, ir, _rng(spec, 1, cid), spec)
        for ir, ids in ((False, VIS_CAMS), (True, NIR_CAMS))
        for cid in ids
    }
    pids = list(range(1, spec.ids + 1))
    order = _rng(spec, 2).permutation(pids)
    n_test = max(2, round(spec.ids / 3))
    test = sorted(int(p) for p in order[:n_test])
    train = sorted(int(p) for p in order[n_test:])
    label = {pid: k for k, pid in enumerate(train)}
    lists: dict[str, list[str]] = {"vis": [], "nir": []}
    count = 0
    for pid in pids:
        r = _rng(spec, 3, pid)
        ident = sample_identity(pid, r, spec)
        chosen = {
            "vis": [c for c in VIS_CAMS if r.random() < 0.4] or [int(r.choice(VIS_CAMS))],
            "nir": [c for c in NIR_CAMS if r.random() < 0.4] or [int(r.choice(NIR_CAMS))],
        }
        for sub, ir in (("vis", False), ("nir", True)):
            is_train = pid in label
            for cid in chosen[sub]:
                cam = cams[(cid, ir)]
                n = int(r.integers(spec.min_images, spec.max_images + 1))
                views = view_mix(cam, _rng(spec, 7, pid, cid, int(ir)))
                for frame in range(1, n + 1):
                    fr = _rng(spec, 4, pid, cid, int(ir), frame)
                    pose = sample_pose(fr, views, cam, spec.difficulty)
                    img = render(canvas, ident, cam, pose, fr)
                    name = f"{pid:04d}_c{cid:02d}_s{pid:03d}{cid}_f{frame:04d}_{sub}.jpg"
                    folder = f"{sub}/" if is_train else f"test_{sub}/cam{cid}/"
                    rel = f"{folder}{pid:04d}/{name}"
                    _save(img, out / rel)
                    if is_train:
                        lists[sub].append(f"{rel} {label[pid]}")
                    count += 1
                    if progress:
                        progress(1)
    idx = out / "idx"
    idx.mkdir(parents=True, exist_ok=True)
    (idx / "test_id.txt").write_text(",".join(map(str, test)) + "\n")
    for sub in ("vis", "nir"):
        (idx / f"train_{sub}.txt").write_text("\n".join(lists[sub]) + "\n")
    return {"identities": spec.ids, "train_ids": len(train), "test_ids": len(test), "images": count}
