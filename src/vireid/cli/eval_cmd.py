"""``vireid eval (CHECKPOINT | --features FILE) --protocol P``."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .checkpoint_args import check_trial, checkpoint_trials, parse_roots, parse_trials
from .common import console, friendly_errors
from .paths import require_out_dir


def _from_features(path: Path, protocol: str, root, trials, manifest=None, rerank=False):
    import numpy as np

    from ..data.protocols import get_protocol
    from ..evaluation.evaluator import ProtocolResult, TrialResult, score
    from ..evaluation.features import load_features, samples_from_features
    from ..evaluation.test_time import TestTime

    data = load_features(path)
    samples = samples_from_features(data)
    spec = get_protocol(protocol)
    feats = data["feats"]
    if "split" in data:  # an explicit query/gallery split: one evaluation, no protocol lists
        split = data["split"].astype(str)
        qi, gi = np.where(split == "query")[0], np.where(split == "gallery")[0]
        q, g = [samples[i] for i in qi], [samples[i] for i in gi]
        res = score(spec.rule, q, g, feats[qi], feats[gi], rerank)
        trial = TrialResult(0, res, q, g, feats[qi], feats[gi])
        tt = TestTime.of(rerank)
        return ProtocolResult(spec.name, [trial], tt.rerank, test_time=tt)
    from ..evaluation.evaluator import evaluate_protocol

    # rows matched by absolute path: `vireid index` stores absolute paths, while older files
    # hold paths relative to the folder they were made in (they still work from there)
    row = {os.path.abspath(s.path): i for i, s in enumerate(samples)}

    def featurize(needed):
        wanted = [os.path.abspath(s.path) for s in needed]
        missing = [p for p in wanted if p not in row]
        if missing:
            raise ValueError(
                f"{path}: no features for {len(missing)} protocol image(s), "
                f"e.g. {missing[0]}; extract features for the whole test set"
            )
        return feats[[row[p] for p in wanted]]

    return evaluate_protocol(spec.name, root, trials, featurize, rerank, manifest)


@friendly_errors
def eval_cmd(
    checkpoint: Path = typer.Argument(
        None, help="a vireid checkpoint (last.pt) or a run directory holding one"
    ),
    features: Path = typer.Option(None, help=".npz features file instead of a model"),
    protocol: list[str] = typer.Option(
        None,
        help="e.g. sysu/all/single (default: the checkpoint's eval.protocol); repeat it or "
        "separate by commas for several; another dataset's protocols evaluate a model "
        "across datasets",
    ),
    root: list[str] = typer.Option(
        None,
        envvar="VIREID_DATA",
        help="dataset root; repeat as DATASET=PATH (e.g. regdb=/data/RegDB) when the "
        "protocols span datasets (default: the training dataset's)",
    ),
    manifest: Path = typer.Option(None, help="folder protocol: CSV manifest instead of a tree"),
    trials: str = typer.Option("all", help="'all' or the number of trials"),
    trial: int = typer.Option(None, help="RegDB: the split (must match the model)"),
    rerank: bool = typer.Option(
        None, "--rerank/--no-rerank", help="k-reciprocal re-ranking (default: eval.rerank)"
    ),
    rerank_k1: int = typer.Option(None, min=1, help="re-ranking k1 (default: eval's, 20)"),
    rerank_k2: int = typer.Option(None, min=1, help="re-ranking k2 (default: eval's, 6)"),
    rerank_lambda: float = typer.Option(
        None, min=0, max=1, help="re-ranking λ (default: eval's, 0.3)"
    ),
    query_expansion: int = typer.Option(
        None, min=0, help="αQE over query and gallery with k neighbours (0: off)"
    ),
    qe_alpha: float = typer.Option(None, min=0, help="αQE's α (default: eval's, 3)"),
    feature: str = typer.Option(
        None, help="bn (after the BNNeck) | pool (before it); default: eval.feature"
    ),
    report: Path = typer.Option(None, help="write an HTML rank report here"),
    out: Path = typer.Option(None, help="write results.json/.csv here"),
    corrupt: str = typer.Option(
        None,
        help="robustness: 'all' or TYPE[,TYPE] (vireid list corruptions); corrupts the "
        "protocol's visible side (SYSU-MM01-C, RegDB-C, LLCM-C)",
    ),
    severity: str = typer.Option("1-5", help="with --corrupt: severities 1-5, N or N,M"),
    corrupt_seed: int = typer.Option(0, help="with --corrupt: seed of every image's corruption"),
    sweep: bool = typer.Option(
        False, help="with --corrupt: also each type at each severity alone (table, plot)"
    ),
    mce_reference: Path = typer.Option(
        None, help="with --sweep: robustness.json of a reference model, for mCE"
    ),
) -> None:
    """Evaluate a checkpoint or a features file on one or more protocols; mean ± std over
    trials. A checkpoint evaluates on any dataset's protocols (cross-dataset); only a
    RegDB model stays on the trial it was trained on."""
    if (checkpoint is None) == (features is None):
        raise ValueError("give exactly one of CHECKPOINT or --features FILE")
    n_trials = parse_trials(trials)
    protocols = [p.strip() for v in protocol or [] for p in v.split(",") if p.strip()]
    roots = parse_roots(root)
    tt_options = {
        "rerank": rerank,
        "rerank_k1": rerank_k1,
        "rerank_k2": rerank_k2,
        "rerank_lambda": rerank_lambda,
        "query_expansion": query_expansion,
        "query_expansion_alpha": qe_alpha,
        "feature": feature,
    }
    tt_options = {k: v for k, v in tt_options.items() if v is not None}
    if feature is not None and feature not in ("bn", "pool"):
        raise ValueError(f"--feature {feature!r}: expected bn or pool")
    if (features is not None or corrupt is not None) and len(protocols) > 1:
        raise ValueError("--features and --corrupt evaluate one protocol at a time")
    single = protocols[0] if protocols else None
    require_out_dir(out, "--out")
    require_out_dir(report, "--report")
    if corrupt is not None:
        if features is not None:
            raise ValueError("--corrupt re-runs the model on corrupted images: give a CHECKPOINT")
        from .robust_eval import corrupted_eval, parse_plan

        return corrupted_eval(
            checkpoint,
            parse_plan(corrupt, severity, corrupt_seed),
            sweep=sweep,
            mce_reference=mce_reference,
            protocol=single,
            root=_root_for(roots, single),
            manifest=manifest,
            n_trials=n_trials,
            trial=trial,
            rerank=bool(rerank),
            report=report,
            out=out,
        )
    if sweep or mce_reference is not None:
        raise ValueError("--sweep and --mce-reference go with --corrupt")
    from ..data.protocols import get_protocol
    from ..engine.restore import load_model
    from ..evaluation.evaluator import resolve_trials
    from ..evaluation.results import results_table, write_results

    if features is not None:
        if single is None:
            raise ValueError("--protocol is required with --features")
        spec = get_protocol(single)
        check_trial(spec, trial)
        chosen = [trial] if spec.trial_is_split and trial else resolve_trials(single, n_trials)
        root_of = roots.get(spec.dataset, roots.get(None))
        if feature is not None:
            raise ValueError("--feature chooses what a model extracts: give a CHECKPOINT")
        from ..config.schema import EvalCfg
        from ..evaluation.test_time import TestTime

        tt = TestTime.from_cfg(EvalCfg(**tt_options))
        results = [_from_features(features, single, root_of, chosen, manifest, tt)]
    else:
        from ..engine.distributed import DistInfo
        from ..engine.run import run_evaluation

        model, cfg, state, device = load_model(checkpoint)
        cfg.eval = cfg.eval.model_validate({**cfg.eval.model_dump(), **tt_options})
        trained_on = cfg.data.dataset.name
        specs = [get_protocol(p) for p in protocols or [cfg.eval.protocol]]
        plans = []  # every protocol's trials and root checked before any evaluation
        for spec in specs:
            chosen = checkpoint_trials(
                spec, checkpoint, trained_on, state.get("trial"), trial, n_trials
            )
            root_of = roots.get(spec.dataset, roots.get(None))
            if root_of is None and spec.dataset != trained_on:
                raise ValueError(
                    f"{spec.name} evaluates {spec.dataset}, not the {trained_on} {checkpoint} "
                    f"was trained on: give its root (--root PATH or --root {spec.dataset}=PATH)"
                )
            plans.append((spec, chosen, root_of))
        results = [
            run_evaluation(
                model, cfg, device, DistInfo(), chosen, None, root_of, manifest, spec.name
            )
            for spec, chosen, root_of in plans
        ]
    many = len(results) > 1
    for result in results:
        console.print(results_table(result))
        console.print("csv: " + result.csv_line(), highlight=False)
        if out:
            write_results(out / _slug(result.protocol) if many else out, result)
        if report:
            from ..report import write_report

            page = write_report(report / _slug(result.protocol) if many else report, result)
            console.print(f"report: {page}", highlight=False)
    if out and many:
        from ..evaluation.evaluator import METRICS
        from ..utils.io import write_text

        lines = ["protocol," + ",".join(METRICS), *(r.csv_line() for r in results)]
        write_text(out / "results.csv", "\n".join(lines) + "\n")


def _slug(protocol: str) -> str:
    """``regdb/v2t`` → ``regdb_v2t``: one results folder per protocol."""
    return protocol.replace("/", "_")


def _root_for(roots: dict, protocol: str | None) -> Path | None:
    """--corrupt's root: DATASET=PATH for the protocol's dataset, else the plain one."""
    if protocol is None or not roots:
        return roots.get(None)
    from ..data.protocols import get_protocol

    return roots.get(get_protocol(protocol).dataset, roots.get(None))
