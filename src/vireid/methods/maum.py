"""MAUM: Memory-Augmented Unidirectional Metrics (Liu et al., CVPR 2022). No public code;
every choice the abstract leaves open is a config key (docs/methods/maum.md).

* MS-Proxies: one cosine classifier per modality (visible ``proxies[0]``, infrared
  ``proxies[1]``), each trained only by its own modality's images (L_MS).
* Unidirectional metrics: infrared features → visible proxies and visible features →
  infrared proxies, with the proxies as static references (stop-gradient), so no shared
  proxy relays the two modalities (L_Uni). They start at ``uni_start_epoch``, once L_MS
  has learned the proxies ("afterward … the already-learned MS-Proxies"); 0 = the
  single-phase reading. L_MS keeps training the proxies in the second phase (otherwise
  the memory would only hold copies of frozen proxies).
* Memory augmentation: per identity and modality, the last ``memory_size − 1`` copies of
  its proxy, each the proxy as it was just before an optimiser step in which that
  identity was in the batch in that modality (i.e. before its proxy was trained as the
  positive). Stored copies are therefore one positive update apart, the newest one
  update behind the current proxy (a copy taken after the step differed from it only by
  negative-class gradients and weight decay); a step that AMP skipped stores nothing.
  Copy slot j of every identity forms reference set j (an identity with fewer copies
  uses its current proxy there).
  L_Uni averages its CE over the current proxies and the ``memory_size − 1`` stored sets.
* Substrate: the AGW network and its triplet loss on the pooled feature (weight
  ``triplet_weight``; 0 disables); the shared classifier is off by default
  (``shared_ce_weight``), since it is the relay MAUM removes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..engine.distributed import world_size
from ..losses.proxy import proxy_ce, unidirectional_ce
from ..registry import METHODS
from .supervised import AGW

VIS, IR = 0, 1


class MAUM(AGW):
    name = "maum"

    def __init__(self, model, num_classes: int, cfg) -> None:
        super().__init__(model, cfg.label_smoothing, cfg.triplet, cfg.margin, cfg.triplet_weight)
        self.cfg = cfg
        dim = model.feat_dim
        self.proxies = nn.Parameter(0.01 * torch.randn(2, num_classes, dim))
        # per-identity rings of older proxy copies: bank[j, m, c] is copy slot j of
        # identity c's modality-m proxy; ``bank_writes[m, c]`` copies taken so far
        self.register_buffer("bank", torch.zeros(max(cfg.memory_size - 1, 0), 2, num_classes, dim))
        self.register_buffer("bank_writes", torch.zeros(2, num_classes, dtype=torch.long))
        # (identities trained in the last batch per modality (2, C), all proxies before it)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        if cfg.shared_ce_weight == 0:  # unused: frozen, so DDP does not wait for its grads
            model.classifier.requires_grad_(False)

    def references(self, modality: int) -> list[torch.Tensor]:
        """The ``memory_size`` reference proxy sets (C, D) of ``modality``: the current
        proxies, then copy slot j of every identity (its current proxy while it has fewer
        than j + 1 copies)."""
        cur = self.proxies[modality]
        writes = self.bank_writes[modality]
        return [
            cur,
            *(
                torch.where((writes > j)[:, None], self.bank[j, modality], cur.detach())
                for j in range(len(self.bank))
            ),
        ]

    def training_step(self, batch):
        c = self.cfg
        out = self.model(batch["images"], batch["modality"])
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        y, m = batch["labels"], batch["modality"]
        f = out["feat"].float()
        vis, ir = m == VIS, m == IR
        if len(self.bank):
            trained = torch.zeros(self.bank_writes.shape, dtype=torch.bool, device=y.device)
            trained[VIS, y[vis]] = True
            trained[IR, y[ir]] = True
            self._pending = (trained, self.proxies.detach().clone())
        ms = proxy_ce(f[vis], y[vis], self.proxies[VIS], c.temp)
        ms = ms + proxy_ce(f[ir], y[ir], self.proxies[IR], c.temp)
        parts = {"ms": ms.detach()} if c.ms_weight > 0 else {}
        loss = c.ms_weight * ms
        if c.uni_weight > 0 and self.epoch >= c.uni_start_epoch:
            uni = unidirectional_ce(f[ir], y[ir], self.references(VIS), c.temp)
            uni = uni + unidirectional_ce(f[vis], y[vis], self.references(IR), c.temp)
            loss = loss + c.uni_weight * uni
            parts["uni"] = uni.detach()
        if self.triplet_weight > 0:
            tri = self.triplet_loss(out["pool"].float(), y)
            loss = loss + self.triplet_weight * tri
            parts["triplet"] = tri.detach()
        if c.shared_ce_weight > 0:
            ce = F.cross_entropy(out["logits"].float(), y, label_smoothing=c.label_smoothing)
            loss = loss + c.shared_ce_weight * ce
            parts["ce"] = ce.detach()
        with torch.no_grad():  # accuracy of the modality's own proxies
            own = torch.where(vis[:, None], self._cos(f, VIS), self._cos(f, IR))
            parts["acc"] = (own.argmax(1) == y).float().mean()
        return {"loss": loss, **parts}

    def _cos(self, f: torch.Tensor, modality: int) -> torch.Tensor:
        return F.normalize(f, dim=1) @ F.normalize(self.proxies[modality], dim=1).T

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Store the pre-step proxies of the identities just trained (per modality) in
        their rings, one copy per positive update of that identity. Under DDP the trained
        identities are those of every rank's batch (the proxies are the same on every
        rank, so every rank writes the same copies and the bank stays in step)."""
        pending, self._pending = self._pending, None
        if pending is None or not self.optimizer_stepped:
            return
        trained, before = pending
        if world_size() > 1:
            flags = trained.to(torch.int32)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            trained = flags.bool()
        modality, ids = torch.nonzero(trained, as_tuple=True)
        slot = self.bank_writes[modality, ids] % len(self.bank)
        self.bank[slot, modality, ids] = before[modality, ids]
        self.bank_writes[modality, ids] += 1


@METHODS.register("maum")
def build_maum(cfg, model) -> MAUM:
    if model.classifier is None:
        raise ValueError("maum is supervised: the model needs the training identities")
    return MAUM(model, model.classifier.out_features, cfg)
