"""Naive per-query loops written from the community definitions (protocols.md §1.4, §2.3,
§3), used as oracles by the tests and as the baseline by the benchmarks."""

from __future__ import annotations

import numpy as np


def naive_eval(dist, q_pids, g_pids, q_camids, g_camids, rule, max_rank=20, sort_kind=None):
    nq, ng = dist.shape
    max_rank = min(max_rank, ng)
    order = np.argsort(dist, axis=1, kind=sort_kind)
    all_cmc, aps, inps = [], [], []
    for i in range(nq):
        o = order[i]
        gp, gc = g_pids[o], g_camids[o]
        if rule == "sysu":
            keep = ~((q_camids[i] == 3) & (gc == 2))
        elif rule in ("llcm", "market"):
            keep = ~((gp == q_pids[i]) & (gc == q_camids[i]))
        else:
            keep = np.ones(ng, bool)
        kept = gp[keep]
        match = (kept == q_pids[i]).astype(np.int32)
        if not match.any():
            continue
        if rule in ("sysu", "llcm"):
            seen, uniq = set(), []
            for p in kept:
                if p not in seen:
                    seen.add(p)
                    uniq.append(p)
            c = (np.asarray(uniq) == q_pids[i]).cumsum()
        else:
            c = np.minimum(match.cumsum(), 1)
        # fewer kept items than max_rank: the curve stays at its last value
        c = np.concatenate([c, np.full(max(0, max_rank - len(c)), c[-1])])[:max_rank]
        all_cmc.append(c)
        cum = match.cumsum()
        pos = np.where(match == 1)[0]
        inps.append(cum[pos.max()] / (pos.max() + 1.0))
        aps.append(sum(cum[p] / (p + 1.0) for p in pos) / match.sum())
    cmc = np.asarray(all_cmc).astype(np.float32).sum(0) / len(all_cmc)
    return cmc, float(np.mean(aps)), float(np.mean(inps)), len(all_cmc)
