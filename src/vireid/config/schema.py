"""Pydantic v2 schemas: the single source of truth for every config key.

Every model forbids unknown keys. Polymorphic sections (``data.dataset``, ``model``,
``method``) are discriminated on ``name``. Building blocks never see these objects; the
``build_*`` functions turn them into explicit arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


# --------------------------------------------------------------------------- data
class SysuDatasetCfg(Strict):
    name: Literal["sysu_mm01"] = "sysu_mm01"
    root: Path | None = Field(None, description="dataset root; falls back to $VIREID_DATA")


class RegDBDatasetCfg(Strict):
    name: Literal["regdb"] = "regdb"
    root: Path | None = None
    trial: int = Field(1, ge=1, le=10, description="RegDB split 1..10; one model per trial")


class LLCMDatasetCfg(Strict):
    name: Literal["llcm"] = "llcm"
    root: Path | None = None


class FolderDatasetCfg(Strict):
    name: Literal["folder"] = "folder"
    root: Path | None = None
    manifest: Path | None = Field(None, description="CSV manifest; default: parse the tree")


DatasetCfg = Annotated[
    SysuDatasetCfg | RegDBDatasetCfg | LLCMDatasetCfg | FolderDatasetCfg,
    Field(discriminator="name"),
]


class BatchCfg(Strict):
    num_ids: int = Field(8, ge=1, description="P identities (visible clusters) per batch")
    num_instances: int = Field(4, ge=1, description="K images per identity and modality")
    num_ids_infrared: int | None = Field(
        None, ge=1, description="unsupervised: P infrared clusters (default: num_ids)"
    )
    instances: Literal["distinct", "community"] = Field(
        "distinct",
        description="unsupervised: how a cluster's K instances are drawn after the first; "
        "distinct = other cameras first, then the same camera, repeats only when the cluster "
        "has fewer than K; community = Cluster-Contrast's RandomMultipleGallerySampler: K-1 "
        "from the other cameras, with replacement when they hold fewer (docs/benchmark.md)",
    )


class AugmentCfg(Strict):
    pad: int = Field(10, ge=0)
    flip: float = Field(0.5, ge=0, le=1)
    random_erasing: float = Field(0.0, ge=0, le=1)
    channel_erasing: float = Field(0.0, ge=0, le=1, description="CAJ channel random erasing")
    erasing_draw: Literal["torchvision", "caj"] = Field(
        "torchvision",
        description="channel erasing's box: torchvision = RandomErasing's draw (log-uniform "
        "aspect, 10 tries); caj = CAJ's ChannelRandomErasing (uniform aspect in [0.3, 3.33], "
        "100 tries, so small images are erased more often; docs/benchmark.md)",
    )
    channel_exchange: bool = Field(False, description="CAJ: second visible view, one channel")
    adaptive_gray: float = Field(0.0, ge=0, le=1, description="CAJ IR channel-adaptive gray")


class KeepFractionCfg(Strict):
    """Modality imbalance: keep only a fraction of one modality's training images."""

    modality: Literal["visible", "infrared"]
    fraction: float = Field(gt=0, le=1, description="per identity, at least one image kept")
    seed: int = Field(0, description="which images are kept (fixed across training seeds)")


class DataCfg(Strict):
    dataset: DatasetCfg = Field(default_factory=SysuDatasetCfg)
    keep_fraction: KeepFractionCfg | None = Field(
        None, description="training images of one modality subsampled per identity"
    )
    val_ids: int = Field(
        0,
        ge=0,
        description="hold out this many training identities (seen in both modalities) as a "
        "validation split: eval.every evaluates it, best.pt keeps its best epoch (0: none)",
    )
    subset_ids: int | None = Field(
        None,
        ge=1,
        description="train on the first N identities (sorted ids) seen in both modalities "
        "(smoke runs, debugging); evaluation data are untouched",
    )
    height: int = Field(288, ge=16)
    width: int = Field(144, ge=8)
    batch: BatchCfg = Field(default_factory=BatchCfg)
    augment: AugmentCfg = Field(default_factory=AugmentCfg)
    workers: int = Field(2, ge=0)
    cache: bool = Field(True, description="decode + resize once into a memory-mapped cache")
    cache_dir: Path | None = None


# -------------------------------------------------------------------------- model
class TwoStreamCfg(Strict):
    name: Literal["two_stream"] = "two_stream"
    arch: Literal["resnet18", "resnet34", "resnet50"] = "resnet50"
    pretrained: Path | None = Field(
        None,
        description="local ImageNet weights (.pth/.safetensors), `torchvision` (hub cache) or "
        "`synthetic` (the synthetic benchmark's stand-in, built on first use)",
    )
    last_stride: Literal[1, 2] = 1
    non_local: bool = True
    pooling: Literal["gem", "gem_learnable", "avg", "max"] = "gem"
    gem_p: float = Field(3.0, gt=0)
    width: float = Field(1.0, gt=0, le=1, description="channel multiplier (<1 only for tiny demos)")
    modality_specific: Literal["stem", "layer1"] = Field(
        "stem", description="modality-specific part: the stem (AGW) or stem + layer1 (MUN)"
    )


ModelCfg = Annotated[TwoStreamCfg, Field(discriminator="name")]


# ------------------------------------------------------------------------- method
class AGWMethodCfg(Strict):
    name: Literal["agw"] = "agw"
    unsupervised: ClassVar[bool] = False
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    triplet: Literal["wrt", "batch_hard"] = "wrt"
    margin: float = Field(0.3, ge=0, description="batch-hard margin (unused by WRT)")
    triplet_weight: float = Field(1.0, ge=0)


class CAJMethodCfg(Strict):
    name: Literal["caj"] = "caj"
    unsupervised: ClassVar[bool] = False
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    alpha: float = Field(1.0, description="ADP triplet: weight of the hardest-positive term")
    gamma: float = Field(1.0, description="ADP triplet: softmax temperature")
    square: bool = Field(True, description="enhanced squared difference")
    triplet_weight: float = Field(1.0, ge=0)


class MAUMMethodCfg(Strict):
    """MAUM (no public code): every open choice is a key; docs/methods/maum.md."""

    name: Literal["maum"] = "maum"
    unsupervised: ClassVar[bool] = False
    temp: float = Field(0.05, gt=0, description="cosine-proxy temperature")
    ms_weight: float = Field(1.0, ge=0, description="modality-specific proxy CE")
    uni_weight: float = Field(1.0, ge=0, description="both unidirectional metrics")
    uni_start_epoch: int = Field(
        10, ge=0, description="epoch (0-based) the unidirectional terms start; 0 = one stage"
    )
    memory_size: int = Field(
        4, ge=1, description="reference sets: current proxies + memory_size-1 stored copies"
    )
    memory_store: Literal["update", "epoch"] = Field(
        "epoch",
        description="when a copy is stored: `epoch` = all proxies at each epoch's start (sets "
        "one epoch apart); `update` = an identity's proxy before each of its positive updates",
    )
    memory_reduce: Literal["mean", "hard", "joint"] = Field(
        "mean",
        description="how the sets enter L_Uni: `mean` = CE averaged over the sets; `hard` = "
        "one CE with each identity's hardest copy (farthest positive, nearest negatives); "
        "`joint` = one softmax over all copies, an identity's copies all positives",
    )
    memory_every: int = Field(
        1,
        ge=1,
        description="store `epoch`: a snapshot every k-th epoch start (sets k epochs apart)",
    )
    freeze_proxies: bool = Field(
        False,
        description="from uni_start_epoch on, the proxies stay as phase 1 left them (the "
        "literal 'static references'; L_MS then trains the features only)",
    )
    proxies: Literal["per_modality", "shared"] = Field(
        "per_modality",
        description="`shared` = the baseline MAUM argues against: one cosine proxy per "
        "identity for both modalities (needs uni_weight 0)",
    )
    triplet: Literal["wrt", "batch_hard"] = "wrt"
    margin: float = Field(0.3, ge=0, description="batch-hard margin (unused by WRT)")
    triplet_weight: float = Field(1.0, ge=0, description="AGW substrate's triplet; 0 = off")
    shared_ce_weight: float = Field(0.0, ge=0, description="the shared linear classifier; 0 = off")
    label_smoothing: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _shared_proxies_have_no_counterpart(self) -> MAUMMethodCfg:
        if self.proxies == "shared" and self.uni_weight > 0:
            raise ValueError(
                "proxies=shared (the shared-proxy baseline) has no other modality's proxies "
                f"for the unidirectional metrics: set uni_weight=0 (got {self.uni_weight})"
            )
        return self


class MUNMethodCfg(Strict):
    """MUN (no public code): the paper's equations; gaps are keys, docs/methods/mun.md."""

    name: Literal["mun"] = "mun"
    unsupervised: ClassVar[bool] = False
    pyramid_ratios: list[int] = Field([2, 4, 6, 12], min_length=1, description="CML pooling")
    upsample: Literal["transposed", "bilinear"] = Field(
        "transposed", description="CML: back to H × W by transposed convolutions (paper)"
    )
    layer_scale_init: float = Field(
        1.0, gt=0, le=1, description="IML/CML layer scales, in the paper's (0, 1]"
    )
    residual: bool = Field(
        False,
        description="false: F^a = Eq. 9 as printed; true: IMLs refine their input and "
        "F^a adds the V/IR average (ConvNeXt-style reading; pair with layer_scale_init 1e-6)",
    )
    classifier_feature: Literal["pool", "feat"] = Field(
        "feat",
        description="C_v / C_r read Z through the BNNeck (BN + linear, as Re-ID classifiers "
        "[16]) or a bare linear on Z ('pool': does not train, docs/methods/mun.md)",
    )
    ma_beta_start: float = Field(
        1e-8, gt=0, le=1, description="Eq. 14's β at the first epoch (1: no accumulation)"
    )
    ma_beta_end: float = Field(1.0, gt=0, le=1, description="β at the last epoch (linear)")
    triplet_margin: float = Field(0.3, ge=0, description="hard-mining triplet (baseline)")
    idc_weight: float = Field(0.25, ge=0, description="γ, identity consistency")
    ia_weight: float = Field(0.5, ge=0, description="θ, identity alignment")
    ia_margin: float = Field(0.55, ge=0, description="α of the identity alignment")
    ia_normalize: bool = Field(
        True, description="L2-normalised centres (raw ones, Eq. 12 as printed, collapse: mun.md)"
    )
    ia_feature: Literal["pool", "feat"] = Field(
        "pool",
        description="L_ia's centres from Z (Eq. 12) or from the BNNeck's batch-centred "
        "feature, where the margin is reachable (docs/methods/mun.md)",
    )
    ma_weight: float = Field(0.008, ge=0, description="σ, modality alignment")
    ma_prototypes: bool = Field(
        True, description="Table 3: L_ma on the Eq. 13-14 prototypes (false: on the batch's Z)"
    )
    ma_bridge: bool = Field(
        True, description="Table 3: L_ma through the auxiliary modality (false: V-IR MMD)"
    )
    auxiliary: bool = Field(
        True,
        description="false: no auxiliary modality at all (Table 1's B): the generator never "
        "runs and only visible and infrared rows reach the shared stages and the BNNeck",
    )
    ida_weight: float = Field(
        0.0, ge=0, description="L_id^a: own classifier on Z^a (Table 1's +Aux row; 0 = off)"
    )
    label_smoothing: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _auxiliary_losses_need_the_auxiliary_modality(self) -> MUNMethodCfg:
        if self.ia_feature == "feat" and self.classifier_feature != "feat":
            raise ValueError(
                "method.ia_feature=feat needs method.classifier_feature=feat (with 'pool' the "
                "BNNeck never sees the auxiliary rows)"
            )
        if not self.auxiliary:
            # L_ma without the bridge is a V–IR MMD: it needs no auxiliary rows
            reads = ("idc_weight", "ia_weight", "ida_weight", *(("ma_weight",) * self.ma_bridge))
            on = [f"{k}={getattr(self, k)}" for k in reads if getattr(self, k) > 0]
            if on:
                raise ValueError(
                    f"method.auxiliary=false removes the auxiliary modality, but {', '.join(on)} "
                    "read it: set those weights to 0"
                    + (" (or method.ma_bridge=false for L_ma)" if "ma_weight" in on[-1] else "")
                )
        return self


class ClusterCfg(Strict):
    """Per-epoch pseudo-labels: k-reciprocal Jaccard + DBSCAN, per modality."""

    k1: int = Field(30, ge=2)
    k2: int = Field(6, ge=1)
    eps: float = Field(0.6, gt=0, lt=1, description="0.6 SYSU-MM01, 0.3 RegDB (ADCA/MMM)")
    min_samples: int = Field(4, ge=1)
    knn_backend: Literal["auto", "faiss", "torch"] = "auto"
    knn: Literal["exact", "ivf", "hnsw", "bf16"] = Field(
        "exact",
        description="neighbour search; ivf/hnsw: approximate; bf16: the exact torch search's "
        "candidates from bf16 products (GPU tensor cores), re-ranked in fp32 (docs/scaling.md)",
    )
    ivf_nlist: int = Field(0, ge=0, description="knn=ivf: k-means cells; 0 = 2·sqrt(N)")
    # nprobe 128: the labels of 100,000 images of a trained network's features kept at
    # ARI >= 0.998 against the exact search, D = 256 and D = 2048 (PCA-256), within 60 s
    # on 2 cores; 64 kept 0.995 and 0.990, the earlier 8 gave 0.74 (docs/scaling.md).
    # ef_search 256: 0.995 (D = 256), but 0.965-0.975 at D = 2048: IVF is the safer search
    ivf_nprobe: int = Field(128, ge=1, description="knn=ivf: cells searched per sample")
    hnsw_m: int = Field(16, ge=2, description="knn=hnsw: graph links per node")
    hnsw_ef_construction: int = Field(40, ge=1, description="knn=hnsw: build breadth")
    hnsw_ef_search: int = Field(
        256, ge=1, description="knn=hnsw: search breadth (>= k1; >= joint_k3 for ECUL's EMCC)"
    )
    hnsw_metric: Literal["auto", "ip", "l2"] = Field(
        "auto",
        description="knn=hnsw: graph metric; auto = l2 on the full features (their exact "
        "order), ip on a PCA projection (docs/scaling.md)",
    )
    knn_pca_dim: int = Field(
        256, ge=0, description="ivf/hnsw: search on this many PCA components, 0 = all"
    )
    knn_rerank: int = Field(
        2,
        ge=1,
        description="ivf/hnsw with PCA, and bf16: rerank·k candidates re-ranked exactly (k = k1; "
        "joint_k3 for ECUL's EMCC search)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where kNN + Jaccard overlap run; auto = the GPU when present"
    )
    flip: bool = Field(True, description="flip-averaged clustering features (not re-normalised)")


class ClusterContrastMethodCfg(Strict):
    """Dual-memory Cluster-Contrast for VI-ReID (the stage-1 recipe of ADCA/PGM/MMM), with
    ADCA's or PGM's cross-modality association as options."""

    name: Literal["cluster_contrast"] = "cluster_contrast"
    unsupervised: ClassVar[bool] = True
    temp: float = Field(0.05, gt=0)
    momentum: float = Field(0.1, ge=0, lt=1, description="0.1 (run scripts); PGM runs 0.2")
    memory: Literal["mean", "hard"] = "mean"
    cluster: ClusterCfg = Field(default_factory=ClusterCfg)
    cross: Literal["none", "adca", "pgm"] = "none"
    cross_weight: float = Field(0.25, ge=0, description="PGM: weight of the cross loss")
    adca_lambda: float = Field(0.1, ge=0, le=1, description="ADCA lamda_cm")
    adca_threshold: float = Field(0.5, description="ADCA: cosine threshold of voting pairs")


class TSMemCfg(Strict):
    """ECUL's two-step memory update: ``stage1`` for the first ``switch_epoch`` epochs,
    ``stage2`` afterwards; ``switch_epoch: null`` = Cluster-Contrast's rule throughout."""

    switch_epoch: int | None = Field(25, ge=0, description="default: half of 50 epochs")
    stage1: Literal["random", "mean", "hard", "sequential"] = "random"
    stage2: Literal["random", "mean", "hard", "sequential"] = "mean"
    stage1_proxies: Literal["cluster", "camera"] = Field(
        "camera", description="camera: one row per (cluster, camera), read as a set"
    )
    stage2_proxies: Literal["cluster", "camera"] = "cluster"
    camera_read: Literal["log_mean_exp", "log_sum_exp", "mean"] = Field(
        "log_mean_exp",
        description="how a cluster's camera rows are scored: log_mean_exp/log_sum_exp = a "
        "soft nearest row (the own camera's); mean = every camera row pulls equally",
    )


class CameraSearchCfg(Strict):
    """EMCC's ``camera_rule: search`` (the CA-Jaccard reading): k-reciprocal neighbours on
    intra-camera (``k1_intra``) and inter-camera (``joint_k1``) ranking lists, expanded
    over ``k2_intra`` intra- and ``k2_inter`` inter-camera neighbours."""

    k1_intra: int = Field(5, ge=1)
    k2_intra: int = Field(2, ge=1, description="CA-Jaccard README: 2")
    k2_inter: int = Field(4, ge=1, description="CA-Jaccard README: 4")
    k3_range: Literal["global", "camera"] = Field(
        "global",
        description="the k3 filter's range: global = the k3-NN of all samples; camera = "
        "the k3-NN of the own camera and of the other cameras (keeps the search's "
        "inter-camera neighbours)",
    )


class ECULMethodCfg(Strict):
    """ECUL (no public code): vireid's reading, every open choice a key
    (docs/methods/ecul.md; PCAL's numbers where ECUL gives none)."""

    name: Literal["ecul"] = "ecul"
    unsupervised: ClassVar[bool] = True
    temp: float = Field(0.05, gt=0)
    momentum: float = Field(0.1, ge=0, lt=1)
    cluster: ClusterCfg = Field(default_factory=ClusterCfg)
    joint_k1: int = Field(40, ge=2, description="EMCC joint clustering: 40 SYSU, 38 RegDB")
    joint_k2: int = Field(32, ge=1, description="small range (positives): 32 SYSU, 18 RegDB")
    joint_k3: int | None = Field(
        80, ge=2, description="large range (negative filter), >= joint_k1; null = off"
    )
    camera_aware: bool = Field(True, description="cameras in EMCC (see camera_rule)")
    camera_rule: Literal["expansion", "search"] = Field(
        "expansion",
        description="expansion: k2 expansion per (modality, camera) group; search: "
        "CA-Jaccard-style intra/inter-camera k-reciprocal lists (camera_search)",
    )
    camera_search: CameraSearchCfg = Field(default_factory=CameraSearchCfg)
    cross_weight: float = Field(1.0, ge=0, description="cross-modal memory ClusterNCE")
    cross_mixed_only: bool = Field(
        True, description="cross loss only on joint clusters holding both modalities (PCAL)"
    )
    cross_start_epoch: int = Field(1, ge=1, description="1-based epoch the cross terms start")
    cross_memory: Literal["halves", "single"] = Field(
        "halves",
        description="halves: a visible and an infrared row per joint cluster, the proxy "
        "their mean at every use; single: PCAL's one row, updated by either modality",
    )
    instance_weight: float = Field(1.0, ge=0, description="instance-level term; 0 = off")
    instance_temp: float = Field(0.05, gt=0)
    instance_momentum: float = Field(0.2, ge=0, lt=1, description="instance memory")
    selection: Literal["nearest", "mutual", "all"] = "nearest"
    selection_k: int = Field(4, ge=1, description="k of nearest / mutual selection")
    tsmem: TSMemCfg = Field(default_factory=TSMemCfg)

    @model_validator(mode="after")
    def _k3_is_the_large_range(self) -> ECULMethodCfg:
        if self.joint_k3 is not None and self.joint_k3 < self.joint_k1:
            raise ValueError(
                f"joint_k3={self.joint_k3} is below joint_k1={self.joint_k1}: the negative "
                "filter's range must hold the k1 neighbourhood (joint_k3 >= joint_k1, or null)"
            )
        return self


class MMMMethodCfg(Strict):
    """MMM (Shi et al., ECCV 2024). Defaults follow the paper; ``configs/unsupervised/
    mmm_official_*.yaml`` sets the official code's choices (docs/methods/mmm.md)."""

    name: Literal["mmm"] = "mmm"
    unsupervised: ClassVar[bool] = True
    temp: float = Field(0.05, gt=0)
    momentum: float = Field(0.1, ge=0, lt=1)
    cluster: ClusterCfg = Field(default_factory=ClusterCfg)
    joint_k1: int = Field(40, ge=2, description="joint clustering: 40 SYSU, 38 RegDB")
    joint_k2: int = Field(32, ge=1, description="joint clustering: 32 SYSU, 18 RegDB")
    use_joint: bool = Field(True, description="CMC's mixed memory and L_VR")
    mmlm: bool = Field(True, description="multi-memory matching (off: CMC-only baseline)")
    num_memories: int = Field(4, ge=1)
    kmeans_n_init: int = Field(10, ge=1, description="10 = scikit-learn 1.3's default (MMM)")
    cost: Literal["visible", "infrared", "symmetric"] = Field(
        "visible", description="paper sums over visible memories; code over infrared"
    )
    matching: Literal["hungarian", "greedy"] = "hungarian"
    schedule: Literal["per_epoch", "once"] = Field(
        "per_epoch",
        description="once: match at match_start_epoch, then freeze the labels (code); the "
        "GMM confidences and centres are still refitted every epoch",
    )
    match_start_epoch: int = Field(
        10, ge=1, description="1-based epoch of the first matching: CMC-only warm-up before it"
    )
    lambda_cross: float = Field(
        0.0,
        ge=0,
        description="PGM's cross-modality memory term on the matched labels (PGM: 0.25); "
        "0 = the paper's terms only",
    )
    lambda_triplet: float = Field(
        0.0, ge=0, description="hard triplet on the matched labels (code's stage B: 1)"
    )
    triplet_margin: float = Field(0.2, gt=0, description="code: 0.2")
    lambda_intra: float = Field(0.5, ge=0)
    lambda_inter: float = Field(0.05, ge=0)
    intra_loss: Literal["l2sq", "l1"] = Field(
        "l2sq", description="paper l2sq; code l1 (pre-BN, dim-mean; needs schedule: once)"
    )
    intra_start_epoch: int = Field(1, ge=1, description="1-based; paper 1")
    inter_start_epoch: int = Field(
        15,
        ge=1,
        description="1-based; paper 15; code 0-based MD ≥ 0 (preset 1, held by the warm-up)",
    )
    inter_feature: Literal["pool", "feat"] = Field("pool", description="code: pre-BN pool")
    inter_form: Literal["paper", "official"] = Field(
        "paper", description="official: per-view terms summed (4x the paper's scale)"
    )
    confidence: bool = Field(True, description="GMM confidence for memories (SCA)")
    compat_skip_last_cluster: bool = Field(
        False, description="restore the code's off-by-one (last cluster of each modality)"
    )
    joint_single_modality: Literal["drop", "negatives"] = Field(
        "drop",
        description="joint clusters of one modality: dropped, or kept as memory rows that "
        "act only as negatives (code)",
    )
    mixed_memory: Literal["joint", "matched"] = Field(
        "joint",
        description="rows of L_VR's mixed memory after the matching: the joint clusters, or "
        "the matched identities, ½(mean_V + mean_R) each (the matching then acts in L_CMC)",
    )
    joint_reduce: Literal["pooled", "per_modality"] = Field(
        "pooled",
        description="L_VR: one mean over visible and infrared rows, or a mean per modality "
        "summed (code: L_all(IR) + L_all(RGB))",
    )
    lambda_cmc: float = Field(
        1.0, ge=0, description="L_CMC = L_V + L_R + L_VR; 0 = the official stage B (no memories)"
    )
    labels_from: str | None = Field(
        None,
        description="stage B of the official pipeline: a stage-A checkpoint (a path, or "
        "recipe:PATH = that recipe's output_dir/last.pt) whose model's "
        "features are clustered and matched once, before training (needs schedule: once, "
        "match_start_epoch: 1); the network itself starts from model.pretrained",
    )
    lambda_id: float = Field(
        0.0,
        ge=0,
        description="official stage B: confidence-weighted CE of a shared classifier on the "
        "unified labels (code: 1); needs labels_from",
    )
    id_warmup_epochs: int = Field(
        0, ge=0, description="first epochs train the classifier CE alone (code: 5)"
    )

    @model_validator(mode="after")
    def _stage_b_is_frozen(self) -> MMMMethodCfg:
        if self.labels_from is not None and (
            self.schedule != "once" or self.match_start_epoch != 1 or not self.mmlm
        ):
            raise ValueError(
                f"labels_from={self.labels_from}: stage B matches the stage-A features once, "
                "before training; expected schedule: once, match_start_epoch: 1, mmlm: true"
            )
        if self.lambda_id and self.labels_from is None:
            raise ValueError(
                f"lambda_id={self.lambda_id}: the shared classifier's size comes from labels "
                "fixed before training; set labels_from (a stage-A checkpoint)"
            )
        if self.id_warmup_epochs and not self.lambda_id:
            raise ValueError(
                f"id_warmup_epochs={self.id_warmup_epochs}: the warm-up trains the shared "
                "classifier; set lambda_id > 0 (code: 1)"
            )
        return self


MethodCfg = Annotated[
    AGWMethodCfg
    | CAJMethodCfg
    | MAUMMethodCfg
    | MUNMethodCfg
    | ClusterContrastMethodCfg
    | MMMMethodCfg
    | ECULMethodCfg,
    Field(discriminator="name"),
]


# -------------------------------------------------------------------------- train
class TrainCfg(Strict):
    epochs: int = Field(81, ge=1)
    iters_per_epoch: int | None = Field(None, ge=1, description="None: one pass over the data")
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.1, gt=0)
    backbone_lr_mult: float = Field(0.1, gt=0, description="CAJ/MMM: backbone at lr×0.1")
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: int = Field(10, ge=0)
    warmup_start_lr: float | None = Field(
        None, gt=0, description="None: AGW's per-epoch (e+1)/warmup; else a per-step ramp from it"
    )
    milestones: list[int] = Field(default_factory=lambda: [20, 50])
    gamma: float = Field(0.1, gt=0)
    amp: Literal["off", "bf16", "fp16"] = "off"
    channels_last: bool = False
    deterministic: bool = False
    sync_bn: bool = Field(
        False,
        description="DDP: batch norm over the global batch (SyncBatchNorm); off: each rank "
        "normalises its share of the batch (docs/training.md)",
    )
    seed: int = 0
    device: str = Field(
        "auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$", description="auto | cpu | cuda | cuda:N"
    )
    log_every: int = Field(
        20, ge=1, description="iterations between progress lines (and TensorBoard scalars)"
    )
    logger: Literal["none", "wandb", "mlflow"] = Field(
        "none",
        description="also send metrics to Weights & Biases or MLflow (extras vireid[wandb], "
        "vireid[mlflow]); rank 0 only",
    )
    logger_project: str = Field(
        "vireid", min_length=1, description="W&B project / MLflow experiment name"
    )
    checkpoint_every: int = Field(1, ge=1, description="epochs between checkpoints")
    keep_checkpoints: int = Field(
        0,
        ge=0,
        description="besides last.pt, keep epoch_N.pt of the last K checkpoints (0: none)",
    )
    grad_clip: float | None = Field(None, gt=0)
    init_from: str | None = Field(
        None,
        description="start from the model weights of a vireid checkpoint (stage 2): a path, "
        "or recipe:PATH = that recipe's output_dir/last.pt (PATH relative to the YAML file "
        "that writes it); its model must equal this recipe's (checked at load)",
    )


class EvalCfg(Strict):
    protocol: str = Field("sysu/all/single", description="see `vireid list protocols`")
    every: int = Field(0, ge=0, description="evaluate on trial 0 every N epochs (0 = never)")
    trials: Literal["all"] | int = "all"
    flip: bool = False
    feature: Literal["bn", "pool"] = Field(
        "bn", description="bn: after the BNNeck (AGW's test feature); pool: before it"
    )
    rerank: bool = Field(False, description="k-reciprocal re-ranking of the final evaluation")
    rerank_k1: int = Field(20, ge=1)
    rerank_k2: int = Field(6, ge=1)
    rerank_lambda: float = Field(0.3, ge=0, le=1)
    query_expansion: int = Field(0, ge=0, description="αQE neighbours k (0: off)")
    query_expansion_alpha: float = Field(3.0, ge=0)
    batch_size: int = Field(128, ge=1)
    select_on_test: bool = Field(
        False,
        description="PAPER REPRODUCTION ONLY: report the epoch with the best trial-0 test mAP "
        "(needs eval.every > 0); results.json records the epoch",
    )
    report: bool = True


class RunCfg(Strict):
    """A whole run: ``vireid train CONFIG`` validates the YAML against this."""

    output_dir: Path = Path("runs/default")
    data: DataCfg = Field(default_factory=DataCfg)
    model: ModelCfg = Field(default_factory=TwoStreamCfg)
    method: MethodCfg = Field(default_factory=AGWMethodCfg)
    train: TrainCfg = Field(default_factory=TrainCfg)
    eval: EvalCfg = Field(default_factory=EvalCfg)
