"""Review D3: the paper-reading recipes (`mmm_sysu.yaml`, `mmm_regdb.yaml`) train MMM's
ClusterNCE memories with SGD 0.1 (backbone ×0.1, Nesterov, wd 5e-4), a schedule the
official code uses for a classifier CE, never for memories. A CPU smoke of that optimiser,
at its full post-warm-up rate, on a narrow ResNet-18 and a fixed batch: the memory terms
fall. It shows the rate does not blow the ClusterNCE up on a small net; it is not a
substitute for a run at scale (docs/methods/mmm.md, "Optimiser")."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vireid.config.loader import load_config
from vireid.engine.builders import build_optimizer
from vireid.engine.schedule import lr_factor
from vireid.methods.mmm import MMM
from vireid.models.two_stream import TwoStreamNet

CONFIGS = Path(__file__).parents[1] / "configs" / "unsupervised"
VIS, IR = 0, 1


@pytest.mark.parametrize("recipe", ["mmm_sysu.yaml", "mmm_regdb.yaml"])
def test_paper_recipe_optimiser_lowers_the_memory_terms(recipe):
    cfg = load_config(CONFIGS / recipe)
    t = cfg.train
    assert (t.optimizer, t.lr) == ("sgd", 0.1)  # what this smoke is about
    torch.manual_seed(0)
    net = TwoStreamNet("resnet18", non_local=False, width=0.125)
    method_cfg = cfg.method.model_copy(
        update={"use_joint": False, "num_memories": 2, "kmeans_n_init": 1, "match_start_epoch": 1}
    )
    m = MMM(net, method_cfg)
    n, per = 4, 4  # 4 identities x 4 images per modality
    x = torch.randn(2 * n * per, 3, 32, 16)
    mod = torch.tensor([VIS] * n * per + [IR] * n * per)
    x[mod == IR] = x[mod == IR].mean(1, keepdim=True)  # infrared: one channel, repeated
    y = np.repeat(np.arange(n), per)
    batch = {"images": x, "modality": mod, "index": torch.arange(len(x))}
    with torch.no_grad():
        net.eval()
        f = net(x, mod)["feat"].numpy()
        net.train()
    m.on_clusters(0, {VIS: f[: n * per], IR: f[n * per :]}, {VIS: y, IR: y})
    opt = build_optimizer(cfg, m)
    epoch = t.warmup_epochs  # the first epoch at the full rate
    for g in opt.param_groups:
        g["lr"] = t.lr * g["lr_mult"] * lr_factor(epoch, t.warmup_epochs, t.milestones, t.gamma)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1)
    m.set_epoch(epoch)
    nce = []
    for _ in range(12):
        out = m.training_step(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        m.after_optimizer_step()
        nce.append(float(out["nce_visible"] + out["nce_infrared"]))
    assert np.isfinite(nce).all()
    assert np.mean(nce[-3:]) < 0.8 * np.mean(nce[:3]), nce
