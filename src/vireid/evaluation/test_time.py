"""Test-time options of an evaluation (``eval.*``, ``vireid eval --rerank …``): k-reciprocal
re-ranking with its k1/k2/λ, and α-weighted query expansion (AQE).

AQE (Radenović et al., TPAMI 2019, "Fine-tuning CNN image retrieval with no human
annotation", αQE; fast-reid ``aqe``): every feature, query and gallery alike, is replaced
by the mean of its ``k`` nearest features (itself included) weighted by similaritỹ^α, then
L2-normalised. fast-reid forms the (N × N) similarity matrix; here the neighbours come from
the kNN search (faiss on the host), so memory is O(N·k) besides the features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TestTime:
    """What runs between the features and the ranking. The defaults are the community's:
    re-ranking k1 = 20, k2 = 6, λ = 0.3 (Zhong et al., CVPR 2017); AQE off (k = 0),
    α = 3 (fast-reid's ``AQE.ALPHA``)."""

    __test__ = False  # not a pytest class, despite the name

    rerank: bool = False
    k1: int = 20
    k2: int = 6
    lam: float = 0.3
    qe_k: int = 0
    qe_alpha: float = 3.0

    @classmethod
    def of(cls, value: bool | TestTime | None) -> TestTime:
        """``True``/``False`` (the historical ``rerank`` flag) or a ``TestTime``."""
        if isinstance(value, TestTime):
            return value
        return cls(rerank=bool(value))

    @classmethod
    def from_cfg(cls, ev) -> TestTime:
        """From an ``EvalCfg``."""
        return cls(
            ev.rerank,
            ev.rerank_k1,
            ev.rerank_k2,
            ev.rerank_lambda,
            ev.query_expansion,
            ev.query_expansion_alpha,
        )

    def to_json(self) -> dict:
        return asdict(self)


def query_expansion(
    q_feats: np.ndarray, g_feats: np.ndarray, k: int, alpha: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """αQE of L2-normalised ``q_feats`` (Nq, D) and ``g_feats`` (Ng, D) over their union:
    each row becomes Σ_j sim_ij^α · f_j over its ``k`` nearest rows j (itself first),
    normalised. Returns the expanded (query, gallery) features, float32."""
    from ..clustering.knn import knn

    feats = np.concatenate([q_feats, g_feats]).astype(np.float32, copy=False)
    k = min(k, len(feats))
    d2, idx = knn(feats, k)
    sim = 1.0 - d2 / 2.0  # unit vectors: ‖a − b‖² = 2 − 2·a·b
    weights = np.power(sim, alpha, dtype=np.float32)
    out = np.einsum("nk,nkd->nd", weights, feats[idx])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out[: len(q_feats)], out[len(q_feats) :]
