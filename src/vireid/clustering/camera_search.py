"""Cameras in the k-reciprocal neighbour search itself: the CA-Jaccard reading of EMCC's
"camera-aware constraints" (Chen et al., CVPR 2024, arXiv 2311.10605; its code is not
released, so this follows the abstract and the README's settings, not an implementation).

* **Sets (CKRNN reading).** Each sample's ranking list is split in two: the samples of its
  own camera and those of every other camera. R_i = {i} ∪ R_intra(i, k1_intra) ∪
  R_inter(i, k1_inter), where j ∈ R_intra(i, k) when j is among i's k nearest of i's camera
  and i among j's k nearest of j's camera, and likewise on the other-camera lists. A
  neighbourhood crowded by same-camera samples can no longer push the other cameras (and,
  in VI-ReID, the other modality) out of the set.
* **Expansion (CLQE reading).** V'_i = the mean encoding over i's ``k2_intra`` nearest of
  its camera (itself first) and its ``k2_inter`` nearest of the other cameras (the README
  uses 2 and 4).

* **k3 range (``k3_range``).** EMCC's k3 filter keeps the entries of the encoding inside
  i's large range. ``global``: i's k3 nearest of all samples, as the expansion reading;
  under a modality gap that list is crowded by i's own modality and drops the
  other-camera (cross-modal) neighbours the search added. ``camera``: i's k3 nearest of
  its camera ∪ its k3 nearest of the other cameras (``camera_range``), split like the
  sets.

No robust ½·k1 extension of the sets (the community's ``expanded_sets``). The camera
lists come from one exact host search per camera (``faiss.knn``): the cost is about G
exact searches of N/G queries, against the community Jaccard's one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .kreciprocal import encodings

K3_RANGES = ("global", "camera")


@dataclass(frozen=True)
class CameraSearch:
    k1_intra: int = 5
    k2_intra: int = 2
    k2_inter: int = 4
    k3_range: str = "global"

    def __post_init__(self) -> None:
        if self.k3_range not in K3_RANGES:
            raise ValueError(f"camera search k3_range {self.k3_range!r}: expected {K3_RANGES}")


def camera_lists(x: np.ndarray, camera: np.ndarray, k: int, same: bool) -> np.ndarray:
    """(N, k) indices of each row's k nearest among the rows of its own camera
    (``same``; itself normally first) or of the other cameras, ascending L2, −1-padded
    where a camera has fewer candidates."""
    import faiss

    out = np.full((len(x), k), -1, np.int64)
    for cam in np.unique(camera):
        q = np.flatnonzero(camera == cam)
        db = q if same else np.flatnonzero(camera != cam)
        kk = min(k, len(db))
        if kk == 0:
            continue
        _, nn = faiss.knn(np.ascontiguousarray(x[q]), np.ascontiguousarray(x[db]), kk)
        out[q, :kk] = db[nn]
    return out


def camera_range(x: np.ndarray, camera: np.ndarray, k3: int) -> np.ndarray:
    """(N, 2·k3) the k3 filter's range split by camera: each row's k3 nearest of its own
    camera, then its k3 nearest of the other cameras, −1-padded."""
    return np.concatenate(
        [camera_lists(x, camera, k3, same=True), camera_lists(x, camera, k3, same=False)], 1
    )


def _links(lists: np.ndarray, n: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(n), lists.shape[1])
    cols = lists.ravel()
    ok = cols >= 0
    return sp.csr_matrix((np.ones(ok.sum(), np.float32), (rows[ok], cols[ok])), shape=(n, n))


def camera_encodings(
    x: np.ndarray, camera: np.ndarray, k1_inter: int, search: CameraSearch, pair_dist
) -> sp.csr_matrix:
    """(N, N) CSR: the expanded encodings V' of the camera-aware sets (module docstring).
    ``x`` (N, D) float32, ``camera`` (N,) int, ``pair_dist(rows, cols)`` as in
    ``kreciprocal.encodings``."""
    n = len(x)
    camera = np.asarray(camera)
    k_intra = max(search.k1_intra + 1, search.k2_intra)  # +1: the list holds i itself
    intra = camera_lists(x, camera, k_intra, same=True)
    inter = camera_lists(x, camera, max(k1_inter, search.k2_inter), same=False)
    recip = sp.csr_matrix((n, n), dtype=np.float32)
    for lists in (intra[:, : search.k1_intra + 1], inter[:, :k1_inter]):
        A = _links(lists, n)
        recip = recip + A.multiply(A.T)
    E = (recip + sp.identity(n, np.float32, format="csr")).tocsr()
    E.data[:] = 1.0
    V = encodings(E, pair_dist)
    q = np.concatenate([intra[:, : search.k2_intra], inter[:, : search.k2_inter]], 1)
    Q = _links(q, n)
    Q = sp.diags(1.0 / np.maximum(np.asarray(Q.sum(1)).ravel(), 1)).astype(np.float32) @ Q
    return (Q @ V).tocsr()
