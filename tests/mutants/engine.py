"""Mutants of the training engine: exact resume (RNG state, sampler epoch, the methods'
extra state such as memories and prototypes), the AMP-skipped step, and the DDP gathers
(memory updates and features)."""

from __future__ import annotations

from vireid.engine import distributed, run, schedule, trainer
from vireid.losses import memory
from vireid.methods.base import Method

from . import mutant, replace

RESUME = "tests/test_engine.py::test_resume_is_exact"


@mutant(
    "engine.resume_rng_not_restored",
    "Resume: the checkpoint's RNG states (python, numpy, torch) are not restored, so the "
    "resumed epochs draw other augmentations",
    tests=[RESUME],
)
def _(mp):
    mp.setattr(run, "restore_rng", lambda state: None)


@mutant(
    "engine.resume_sampler_epoch",
    "Resume: the loaders are reseeded with the epochs run in this process, not the run's "
    "epoch, so a resumed run replays epoch 0's batches",
    tests=[RESUME],
)
def _(mp):
    def own_count(self):
        # the body of Trainer._batches with set_epoch fed the count of this process's epochs
        ran = getattr(self, "_mutant_epochs", 0)
        self._mutant_epochs = ran + 1
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(ran)
        n = 0
        while True:
            for batch in self.loader:
                yield batch
                n += 1
                if self.iters_per_epoch is not None and n >= self.iters_per_epoch:
                    return
            if self.iters_per_epoch is None:
                return

    mp.setattr(trainer.Trainer, "_batches", own_count)


@mutant(
    "engine.resume_extra_state_dropped",
    "Resume: the method's extra state (memories, prototypes, frozen labels) is not handed "
    "back to it",
    tests=["tests/test_engine.py::test_mun_resumes_exactly_with_its_prototypes"],
)
def _(mp):
    load = run.load_checkpoint

    def without_extra(path):
        state = load(path)
        state.pop("extra", None)
        return state

    mp.setattr(run, "load_checkpoint", without_extra)


@mutant(
    "engine.amp_skip_not_reported",
    "AMP: a step that GradScaler skipped is reported to the method as taken, so the method "
    "stores state of a step that did not happen",
    tests=["tests/test_engine.py::test_trainer_tells_the_method_when_amp_skipped_the_step"],
    fast=True,
)
def _(mp):
    mp.setattr(Method, "optimizer_stepped", property(lambda self: True, lambda self, v: None))


@mutant(
    "engine.ddp_memory_gather_dropped",
    "DDP: a memory update applies only this rank's rows (no all-gather), so the ranks' "
    "memories drift apart",
    tests=[
        "tests/test_distributed.py::test_memory_updates_with_an_empty_rank_stay_in_step[counts0]",
        "tests/test_distributed.py::test_memory_updates_with_an_empty_rank_stay_in_step[counts2]",
    ],
)
def _(mp):
    replace(mp, memory, "_gather", lambda t: t)


@mutant(
    "engine.ddp_feature_gather_unordered",
    "DDP: gathered features stacked rank after rank instead of interleaved back into the "
    "input order",
    tests=["tests/test_distributed.py::test_two_ranks_equal_one_process"],
)
def _(mp):
    import torch
    import torch.distributed as dist

    def rank_blocks(local, n, world):
        if world == 1:
            return local[:n]
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat(parts)[:n]

    replace(mp, distributed, "gather_ordered", rank_blocks)


@mutant(
    "engine.lr_warmup_dropped",
    "LR schedule: AGW's linear warm-up dropped (full lr from the first epoch)",
    tests=["tests/test_engine.py::test_lr_schedule_matches_agw"],
    fast=True,
)
def _(mp):
    factor = schedule.lr_factor

    def no_warmup(epoch, warmup_epochs, milestones, gamma, warmup_start=None, progress=0.0):
        return factor(epoch, 0, milestones, gamma, warmup_start, progress)

    replace(mp, schedule, "lr_factor", no_warmup)
