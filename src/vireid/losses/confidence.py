"""Per-sample label confidence from a two-component Gaussian mixture on per-sample losses
(the DivideMix recipe used by MMM's SCA): losses are min–max normalised, a 2-component
``GaussianMixture(max_iter=100, tol=1e-2, reg_covar=5e-4)`` is fitted, and the confidence is
the posterior of the component with the smaller mean (clean samples have small losses)."""

from __future__ import annotations

import numpy as np
from sklearn.mixture import GaussianMixture


def gmm_confidence(losses: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,) confidences in [0, 1]. Fewer than 2 distinct losses → all ones."""
    x = np.asarray(losses, np.float64).reshape(-1, 1)
    if len(x) < 2 or np.ptp(x) == 0:
        return np.ones(len(x))
    x = (x - x.min()) / np.ptp(x)
    gmm = GaussianMixture(2, max_iter=100, tol=1e-2, reg_covar=5e-4, random_state=seed).fit(x)
    clean = int(np.argmin(gmm.means_.ravel()))
    return gmm.predict_proba(x)[:, clean]
