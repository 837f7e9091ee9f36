"""A cluster memory with one row per (cluster, group) present in the data: ECUL's memories
in ``vireid``'s reading (docs/methods/ecul.md), built on ``TwoStepMemory`` so every TSMem
rule updates the rows.

A sample updates the row of its own (cluster, group); how a cluster is *read* by the
ClusterNCE loss is the ``compose`` mode:

* ``mean``: the cluster's proxy is the normalised mean of its group rows. With the
  modalities as groups this is the cross-modal memory that stays ½(visible + infrared)
  under updates: an infrared-only batch moves the infrared half, and the proxy is
  recomposed from both halves at every use (PCAL's single row, updated by whichever
  modality touched it last, stops being an average after its first update).
* ``set``: the cluster is scored from its rows' similarities s_cg = f·M_cg / τ by the
  ``read`` (TSMem stage 1 with ``stage1_proxies: camera``; one row per cluster gives
  exactly ClusterNCE under every read):

  - ``log_mean_exp`` ℓ_c = log(1/n_c · Σ_g exp s_cg): a soft nearest row, so a sample
    matches its own view's proxy and the per-camera diversity is kept. The cost: at
    τ 0.05 nearly all of the positive's pull goes to the nearest (own-camera) row, so
    the term gives no cross-camera pull inside a modality; and the −log n_c lowers the
    score of clusters seen in more cameras, as positives and as negatives;
  - ``log_sum_exp`` ℓ_c = log Σ_g exp s_cg: the same soft nearest row without the
    −log n_c (clusters seen in more cameras score higher instead);
  - ``mean`` ℓ_c = 1/n_c · Σ_g s_cg: every row of the cluster pulls equally (the
    cross-camera pull is kept; the proxy read is the unnormalised mean of the camera
    rows, a camera-balanced centroid), while each row is still moved by its own camera.

Rows are sorted by cluster; ``table[c, g]`` is the row of (c, g) or −1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .tsmem import TwoStepMemory

COMPOSE = ("mean", "set")
READS = ("log_mean_exp", "log_sum_exp", "mean")


class GroupedMemory(TwoStepMemory):
    def __init__(
        self,
        dim: int,
        row_cluster: torch.Tensor,
        row_group: torch.Tensor,
        num_groups: int,
        temp: float = 0.05,
        momentum: float = 0.1,
        compose: str = "mean",
        read: str = "log_mean_exp",
    ) -> None:
        if compose not in COMPOSE:
            raise ValueError(f"memory compose {compose!r}: expected one of {COMPOSE}")
        if read not in READS:
            raise ValueError(f"memory set read {read!r}: expected one of {READS}")
        super().__init__(dim, len(row_cluster), temp, momentum)
        self.compose, self.read = compose, read
        n_clusters = int(row_cluster.max()) + 1 if len(row_cluster) else 0
        table = torch.full((n_clusters, num_groups), -1, dtype=torch.long)
        table[row_cluster, row_group] = torch.arange(len(row_cluster))
        width = int((table >= 0).sum(1).max()) if n_clusters else 0
        # (C, W) the rows of every cluster, −1-padded: the set's log-mean-exp gathers them
        rows = torch.sort(table, dim=1, descending=True).values[:, : max(width, 1)]
        self.register_buffer("table", table)
        self.register_buffer("rows", rows)
        self.register_buffer("row_cluster", row_cluster.long())

    @classmethod
    def from_features(
        cls,
        feats: np.ndarray,
        labels: np.ndarray,
        groups: np.ndarray,
        temp: float = 0.05,
        momentum: float = 0.1,
        compose: str = "mean",
        read: str = "log_mean_exp",
    ) -> GroupedMemory:
        """Rows = the normalised mean feature of every (cluster, group) present among the
        clustered samples (``labels`` ≥ 0). ``feats`` (N, D), ``labels`` (N,) contiguous
        0..C−1 (−1 outliers), ``groups`` (N,) int codes 0..G−1."""
        keep = np.asarray(labels) >= 0
        y, g = np.asarray(labels)[keep], np.asarray(groups)[keep].astype(np.int64)
        num_groups = int(g.max()) + 1 if len(g) else 1
        pair, inv = np.unique(y * num_groups + g, return_inverse=True)
        sums = np.zeros((len(pair), feats.shape[1]))
        np.add.at(sums, inv.ravel(), np.asarray(feats)[keep].astype(np.float64))
        mem = cls(
            feats.shape[1],
            torch.from_numpy(pair // num_groups),
            torch.from_numpy(pair % num_groups),
            num_groups,
            temp,
            momentum,
            compose,
            read,
        )
        mem.reset(torch.from_numpy(sums.astype(np.float32)))  # normalised there
        return mem

    @property
    def num_clusters(self) -> int:
        return self.table.shape[0]

    def row_of(self, labels: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """(B,) the memory row of each sample's (cluster, group)."""
        return self.table[labels, groups]

    def proxies(self) -> torch.Tensor:
        """(C, D) each cluster's proxy in ``mean`` mode: its rows' normalised mean."""
        s = torch.zeros(self.num_clusters, self.features.shape[1], device=self.features.device)
        s.index_add_(0, self.row_cluster, self.features)
        return F.normalize(s, dim=1)

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """ClusterNCE over clusters read by ``compose``. ``feats`` (B, D), ``labels`` (B,)."""
        return F.cross_entropy(self.scores(feats), labels)

    def scores(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, C) the logits the loss reads: f·proxy/τ (``mean``) or ℓ_c (``set``)."""
        f = F.normalize(feats, dim=1)
        if self.compose == "mean":
            return f @ self.proxies().T / self.temp
        sim = f @ self.features.T / self.temp  # (B, R)
        pad = self.rows < 0
        per = sim[:, self.rows.clamp(min=0)]  # (B, C, W)
        count = (~pad).sum(1).to(sim.dtype)
        if self.read == "mean":
            logits = per.masked_fill(pad, 0.0).sum(2) / count
        else:
            logits = torch.logsumexp(per.masked_fill(pad, float("-inf")), 2)
            if self.read == "log_mean_exp":
                logits = logits - torch.log(count)
        return logits

    @torch.no_grad()
    def update_groups(
        self,
        feats: torch.Tensor,
        labels: torch.Tensor,
        groups: torch.Tensor,
        rule: str,
        generator: torch.Generator | None = None,
    ) -> None:
        """The TSMem ``rule`` applied per row: each (cluster, group) of the batch moves
        towards its own members only. Every rank must call it (it all-gathers)."""
        rows = self.row_of(labels, groups)
        keep = rows >= 0  # a (cluster, group) without a row (not in the epoch's clusters)
        self.update_with(feats[keep], rows[keep], rule, generator)
