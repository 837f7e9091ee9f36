"""MAUM: Memory-Augmented Unidirectional Metrics (Liu et al., CVPR 2022). No public code,
and the paper itself was not retrieved here: this reads the abstract, and every choice it
leaves open is a config key (docs/methods/maum.md).

* MS-Proxies: one cosine classifier per modality (visible ``proxies[0]``, infrared
  ``proxies[1]``), each trained only by its own modality's images (L_MS).
* Unidirectional metrics: infrared features → visible proxies and visible features →
  infrared proxies (``COUNTERPART``), with the proxies as static references
  (stop-gradient, in ``references``), so no shared proxy relays the two modalities
  (L_Uni). They start at ``uni_start_epoch``, once L_MS has learned the proxies
  ("afterward … the already-learned MS-Proxies"); 0 = the single-phase reading. L_MS
  keeps training the proxies in the second phase (otherwise the memory would only hold
  copies of frozen proxies); ``freeze_proxies`` is the literal reading (fixed from
  ``uni_start_epoch`` on).
* Memory augmentation ("storing the MS-Proxies into memory banks to increase the reference
  diversity"): per modality, ``memory_size − 1`` stored copies of the proxies join the
  current ones as reference sets. ``memory_store`` says when a copy is taken: ``epoch``
  (default) = all proxies at the start of every epoch, so set j is the proxies of j epochs
  ago; ``update`` = an identity's proxy just before each optimiser step that trained it as
  the positive (copies one positive update apart: 0.4–6° from the current proxies, half
  the epoch store's angle); ``memory_every`` = k spaces the epoch snapshots k epochs
  apart. ``memory_reduce`` says how the sets enter L_Uni: ``mean`` (default) = the CE
  averaged over the sets, ``hard`` = one CE with each identity's hardest copy, ``joint`` =
  one softmax over all copies, an identity's copies all positives. No committed
  measurement shows an effect of the memory (docs/methods/maum.md, "Measured"). ``mem_angle``
  / ``mem_grad_cos`` in the metrics log say how far the stored sets are from the current
  proxies and how much they turn L_Uni's gradient.
* ``proxies: shared``: the baseline the paper argues against, one cosine proxy per
  identity for both modalities at the same temperature (no unidirectional metrics).
* Substrate: the AGW network and its triplet loss on the pooled feature (weight
  ``triplet_weight``; 0 disables); the shared linear classifier is off by default
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
# the modality whose proxies L_Uni pulls each modality's features to
COUNTERPART = {VIS: IR, IR: VIS}


class MAUM(AGW):
    name = "maum"
    diagnostics = ("acc", "mem_angle", "mem_grad_cos")

    def __init__(self, model, num_classes: int, cfg) -> None:
        super().__init__(model, cfg.label_smoothing, cfg.triplet, cfg.margin, cfg.triplet_weight)
        self.cfg = cfg
        dim = model.feat_dim
        sets = 1 if cfg.proxies == "shared" else 2
        self.proxies = nn.Parameter(0.01 * torch.randn(sets, num_classes, dim))
        # stored copies: bank[slot, m, c] is a copy of identity c's modality-m proxy;
        # bank_writes[m, c] copies taken so far (the newest is in slot (writes − 1) % slots)
        copies = max(cfg.memory_size - 1, 0) if sets == 2 else 0
        self.register_buffer("bank", torch.zeros(copies, sets, num_classes, dim))
        self.register_buffer("bank_writes", torch.zeros(sets, num_classes, dtype=torch.long))
        # the last epoch whose starting proxies were stored (store "epoch"; 0 = none)
        self.register_buffer("bank_epoch", torch.zeros((), dtype=torch.long))
        if cfg.freeze_proxies:  # the proxies at the start of phase 2, restored after each step
            self.register_buffer("phase1_proxies", torch.zeros_like(self.proxies.detach()))
            self.register_buffer("phase1_stored", torch.zeros((), dtype=torch.bool))
        # (identities trained in the last batch per modality (2, C), all proxies before it)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None
        if cfg.shared_ce_weight == 0:  # unused: frozen, so DDP does not wait for its grads
            model.classifier.requires_grad_(False)

    def own_proxies(self, modality: int) -> torch.Tensor:
        """The proxies (C, D) that L_MS trains with ``modality``'s images."""
        return self.proxies[0 if self.cfg.proxies == "shared" else modality]

    def uni_active(self) -> bool:
        """Phase 2: the unidirectional metrics are on from ``uni_start_epoch``."""
        return self.cfg.uni_weight > 0 and self.epoch >= self.cfg.uni_start_epoch

    def references(self, modality: int) -> list[torch.Tensor]:
        """``modality``'s static reference sets (C, D), all detached: the current proxies,
        then set j = every identity's (j + 1)-th newest stored copy (its current proxy
        while it has fewer copies), so one set holds one age."""
        cur = self.proxies[modality].detach()
        slots = len(self.bank)
        writes = self.bank_writes[modality]
        ids = torch.arange(len(writes), device=writes.device)
        sets = [cur]
        for j in range(slots):
            slot = (writes - 1 - j) % slots
            sets.append(torch.where((writes > j)[:, None], self.bank[slot, modality, ids], cur))
        return sets

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        c = self.cfg
        due = epoch > self.bank_epoch and epoch % c.memory_every == 0
        if c.memory_store == "epoch" and len(self.bank) and due:
            # the proxies L_MS learned up to this epoch (not the untrained ones of epoch 0);
            # once per epoch, also when a resumed run calls this again; every k-th epoch
            # (memory_every) spaces the sets so they do not collapse onto the current proxies
            with torch.no_grad():
                slot = self.bank_writes % len(self.bank)  # equal for every identity
                self.bank[slot[0, 0]] = self.proxies.detach()
                self.bank_writes += 1
                self.bank_epoch.fill_(epoch)
        if c.freeze_proxies and epoch >= c.uni_start_epoch and not self.phase1_stored:
            with torch.no_grad():
                self.phase1_proxies.copy_(self.proxies)
                self.phase1_stored.fill_(True)

    def training_step(self, batch):
        c = self.cfg
        out = self.model(batch["images"], batch["modality"])
        out, batch = self.global_batch(out, batch)  # DDP: every rank's rows
        y, m = batch["labels"], batch["modality"]
        f = out["feat"].float()
        masks = {VIS: m == VIS, IR: m == IR}
        if c.memory_store == "update" and len(self.bank):
            trained = torch.zeros(self.bank_writes.shape, dtype=torch.bool, device=y.device)
            trained[VIS, y[masks[VIS]]] = True
            trained[IR, y[masks[IR]]] = True
            self._pending = (trained, self.proxies.detach().clone())
        ms = sum(proxy_ce(f[masks[k]], y[masks[k]], self.own_proxies(k), c.temp) for k in masks)
        parts = {"ms": ms.detach()} if c.ms_weight > 0 else {}
        loss = c.ms_weight * ms
        if self.uni_active():
            refs = {k: self.references(COUNTERPART[k]) for k in masks}
            uni = sum(
                unidirectional_ce(f[masks[k]], y[masks[k]], refs[k], c.temp, c.memory_reduce)
                for k in masks
            )
            loss = loss + c.uni_weight * uni
            parts["uni"] = uni.detach()
            if len(self.bank):
                parts.update(self._memory_diagnostics(f, y, masks, refs))
        if self.triplet_weight > 0:
            tri = self.triplet_loss(out["pool"].float(), y)
            loss = loss + self.triplet_weight * tri
            parts["triplet"] = tri.detach()
        if c.shared_ce_weight > 0:
            ce = F.cross_entropy(out["logits"].float(), y, label_smoothing=c.label_smoothing)
            loss = loss + c.shared_ce_weight * ce
            parts["ce"] = ce.detach()
        with torch.no_grad():  # accuracy of the modality's own proxies
            own = torch.where(masks[VIS][:, None], self._cos(f, VIS), self._cos(f, IR))
            parts["acc"] = (own.argmax(1) == y).float().mean()
        return {"loss": loss, **parts}

    def _memory_diagnostics(self, f, y, masks, refs) -> dict[str, torch.Tensor]:
        """How much the memory adds: ``mem_angle``, the mean angle (degrees) between the
        stored copies and the current proxies, over the copies held (an identity without a
        j-th copy, whose set j falls back to its current proxy, would count as 0°);
        ``mem_grad_cos``, the cosine between L_Uni's gradient on this batch's features with
        the memory and with the current proxies alone (1 = the memory changes nothing)."""
        with torch.no_grad():
            cos = [f.new_zeros(0)]
            for k, r in refs.items():
                writes = self.bank_writes[COUNTERPART[k]]
                for j, s in enumerate(r[1:]):
                    held = writes > j
                    cos.append(F.cosine_similarity(s[held], r[0][held], dim=1))
            cos = torch.cat(cos)
            angle = torch.rad2deg(torch.acos(cos.clamp(-1, 1))).mean() if len(cos) else cos.sum()
        with torch.enable_grad():
            x = f.detach().requires_grad_()
            grads = []
            for sets, reduce in ((None, self.cfg.memory_reduce), (1, "mean")):
                loss = sum(
                    unidirectional_ce(
                        x[masks[k]], y[masks[k]], refs[k][:sets], self.cfg.temp, reduce
                    )
                    for k in masks
                )
                grads.append(torch.autograd.grad(loss, x)[0].flatten())
        return {"mem_angle": angle, "mem_grad_cos": F.cosine_similarity(*grads, dim=0)}

    def _cos(self, f: torch.Tensor, modality: int) -> torch.Tensor:
        return F.normalize(f, dim=1) @ F.normalize(self.own_proxies(modality), dim=1).T

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """``freeze_proxies``: undo the step's change of the proxies in phase 2. Store
        (``memory_store: update``) the pre-step proxies of the identities just
        trained (per modality), one copy per positive update of that identity. Under DDP
        the trained identities are those of every rank's batch (the proxies are the same on
        every rank, so every rank writes the same copies and the bank stays in step)."""
        if self.cfg.freeze_proxies and self.phase1_stored:
            # a restore, not a detach: SGD's momentum and weight decay would still move
            # proxies whose gradient is zero, and DDP expects a gradient for them
            self.proxies.copy_(self.phase1_proxies)
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
