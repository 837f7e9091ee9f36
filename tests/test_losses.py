import itertools
import math

import pytest
import torch

from vireid.losses import (
    adp_triplet,
    batch_hard_triplet,
    pairwise_euclidean,
    weighted_regularized_triplet,
)


def batch(seed=0, n_ids=4, k=3, d=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_ids * k, d, generator=g, dtype=torch.float64)
    return x, torch.arange(n_ids).repeat_interleave(k)


def dist(a, b):
    return math.sqrt(max(sum((x - y) ** 2 for x, y in zip(a, b)), 1e-12))


def weighted(x, y, i, alpha=1.0):
    """Softmax-weighted positive/negative distance of anchor i, element by element."""
    n = len(y)
    pos = [j for j in range(n) if y[j] == y[i]]
    neg = [j for j in range(n) if y[j] != y[i]]
    dp = [dist(x[i], x[j]) for j in pos]
    dn = [dist(x[i], x[j]) for j in neg]
    # masked entries enter the max as 0 in the community code
    mp = max([alpha * v for v in dp] + [0.0])
    mn = max([-alpha * v for v in dn] + [0.0])
    wp = [math.exp(alpha * v - mp) for v in dp]
    wn = [math.exp(-alpha * v - mn) for v in dn]
    fp = sum(v * w for v, w in zip(dp, wp)) / (sum(wp) + 1e-6)
    cn = sum(v * w for v, w in zip(dn, wn)) / (sum(wn) + 1e-6)
    return fp, cn


def test_pairwise_euclidean():
    x, _ = batch()
    d = pairwise_euclidean(x)
    for i, j in itertools.product(range(len(x)), repeat=2):
        # the expansion |x|²+|y|²−2x·y leaves float32 round-off on the diagonal, as in AGW
        tol = 5e-3 if i == j else 1e-5
        assert d[i, j].item() == pytest.approx(dist(x[i].tolist(), x[j].tolist()), abs=tol)


def test_batch_hard_brute_force():
    x, y = batch(1)
    xs, ys = x.tolist(), y.tolist()
    total = 0.0
    for i in range(len(xs)):
        ap = max(dist(xs[i], xs[j]) for j in range(len(xs)) if ys[j] == ys[i])
        an = min(dist(xs[i], xs[j]) for j in range(len(xs)) if ys[j] != ys[i])
        total += max(0.0, ap - an + 0.3)
    assert batch_hard_triplet(x, y, 0.3).item() == pytest.approx(total / len(xs), abs=1e-5)


def test_wrt_brute_force():
    x, y = batch(2)
    xs, ys = x.tolist(), y.tolist()
    vals = [
        math.log1p(math.exp(-(cn - fp))) for fp, cn in (weighted(xs, ys, i) for i in range(len(xs)))
    ]
    assert weighted_regularized_triplet(x, y).item() == pytest.approx(
        sum(vals) / len(vals), abs=1e-5
    )


@pytest.mark.parametrize("alpha,gamma,square", [(1, 1, True), (2, 0.5, True), (1, 1, False)])
def test_adp_brute_force(alpha, gamma, square):
    x, y = batch(3)
    xs, ys = x.tolist(), y.tolist()
    vals = []
    for i in range(len(xs)):
        fp, cn = weighted(xs, ys, i, alpha)
        if square:
            z = min(gamma * (fp - cn) ** 2, 88)
            t = -1.0 if fp > cn else 1.0
            vals.append(math.log1p(math.exp(-t * z)))
        else:
            vals.append(math.log1p(math.exp(-gamma * (cn - fp))))
    got = adp_triplet(x, y, alpha, gamma, square).item()
    assert got == pytest.approx(sum(vals) / len(vals), abs=1e-5)


def test_losses_have_gradients():
    x, y = batch(4)
    x.requires_grad_(True)
    (weighted_regularized_triplet(x, y) + adp_triplet(x, y)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
