"""Mutants of the recipe machinery: DDP global batches (rank shares, gathered rows,
synchronised batch norm, memory updates), recipe chains, the smoke schedule, the LLCM
training reader."""

from __future__ import annotations

from pathlib import Path

from vireid.config import chains
from vireid.data import samplers
from vireid.data.datasets import llcm
from vireid.engine import distributed, run, smoke_plan
from vireid.losses import memory
from vireid.methods import base, mun

from . import mutant

DDP = "tests/test_ddp_recipe.py::test_two_ranks_compute_the_one_process_losses"


@mutant(
    "engine.ddp_rank_local_loss",
    "DDP global batch: each rank's loss sees only its own rows (no gather): hard mining "
    "and memory updates over half the batch",
    tests=[f"{DDP}[agw]"],
)
def _(mp):
    mp.setattr(base.Method, "global_batch", lambda self, out, batch: (out, batch))
    mp.setattr(
        mun.MUN,
        "_global_rows",
        lambda self, pool, feat, batch, n: (pool, feat, batch["labels"], batch["modality"], n),
    )


@mutant(
    "engine.ddp_gather_grad_not_summed",
    "DDP global batch: the gathered rows' gradient is this rank's copy only, not the sum "
    "over ranks (the weights then get 1/W of the one-process gradient)",
    tests=[f"{DDP}[agw]"],
)
def _(mp):
    def backward(ctx, grad):
        return grad[ctx.start : ctx.stop]

    mp.setattr(distributed._GatherRows, "backward", staticmethod(backward))


@mutant(
    "engine.ddp_no_sync_bn",
    "train.sync_bn: batch norm keeps each rank's statistics",
    tests=[f"{DDP}[agw]"],
)
def _(mp):
    mp.setattr(run, "convert_sync_bn", lambda module: module)


@mutant(
    "engine.ddp_rank_batches",
    "DDP samplers: every rank forwards the whole batch (the old per-rank P x K batches)",
    tests=[
        "tests/test_samplers.py::test_distributed_ranks_share_the_global_batch_by_identity",
        f"{DDP}[agw]",
    ],
    fast=True,
)
def _(mp):
    init = samplers._EpochBatches.__init__

    def whole(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.share = slice(None)

    mp.setattr(samplers._EpochBatches, "__init__", whole)


@mutant(
    "engine.ddp_memory_gathers_twice",
    "DDP: cluster memories all-gather rows the method already gathered (each update "
    "applied W times)",
    tests=[f"{DDP}[cluster_contrast_pgm]"],
)
def _(mp):
    mp.setattr(memory, "batch_is_global", lambda: False)


@mutant(
    "engine.chain_model_unchecked",
    "recipe chains: the producer's model is not compared at config load",
    tests=[
        "tests/test_chains.py::test_incompatible_producer_is_refused_at_load_naming_both_models",
        "tests/test_chains.py::test_existing_checkpoint_path_is_compared_at_load",
    ],
    fast=True,
)
def _(mp):
    mp.setattr(chains, "check_model_compat", lambda ref, model, key="": None)


@mutant(
    "engine.smoke_schedule_uncompressed",
    "--smoke: stage starts keep their shipped epochs (a 2-epoch smoke never reaches them)",
    tests=["tests/test_smoke.py::test_compressed_schedule_keeps_every_stage_in_order"],
    fast=True,
)
def _(mp):
    mp.setattr(smoke_plan, "stage_keys", lambda cfg: {})


@mutant(
    "engine.llcm_camera_from_folder_only",
    "LLCM reader: the camera only from a cam<N> folder (the release's training images "
    "have none: training fails)",
    tests=["tests/test_datasets.py::test_llcm_training_images_take_the_camera_from_the_file_name"],
    fast=True,
)
def _(mp):
    def folder_only(rel: str) -> int:
        for part in Path(rel).parts:
            m = llcm.CAM_RE.match(part)
            if m:
                return int(m.group(1))
        raise llcm.DatasetError(f"LLCM: no 'cam<N>' component in {rel!r}")

    mp.setattr(llcm, "camid_from_relpath", folder_only)
