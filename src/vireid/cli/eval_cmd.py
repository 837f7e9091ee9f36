"""``vireid eval (CHECKPOINT | --features FILE) --protocol P``."""

from __future__ import annotations

from pathlib import Path

import typer

from .checkpoint_args import checkpoint_trials, parse_trials
from .common import console, friendly_errors


def _from_features(path: Path, protocol: str, root, trials, manifest=None, rerank=False):
    import numpy as np

    from ..data.protocols import get_protocol
    from ..evaluation.evaluator import ProtocolResult, TrialResult, score
    from ..evaluation.features import load_features, samples_from_features

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
        return ProtocolResult(spec.name, [trial], rerank)
    from ..evaluation.evaluator import evaluate_protocol

    row = {s.path: i for i, s in enumerate(samples)}

    def featurize(needed):
        missing = [s.path for s in needed if s.path not in row]
        if missing:
            raise ValueError(
                f"{path}: no features for {len(missing)} protocol image(s), "
                f"e.g. {missing[0]}; extract features for the whole test set"
            )
        return feats[[row[s.path] for s in needed]]

    return evaluate_protocol(spec.name, root, trials, featurize, rerank, manifest)


@friendly_errors
def eval_cmd(
    checkpoint: Path = typer.Argument(None, help="a vireid checkpoint (last.pt)"),
    features: Path = typer.Option(None, help=".npz features file instead of a model"),
    protocol: str = typer.Option(
        None, help="e.g. sysu/all/single (default: the checkpoint's eval.protocol)"
    ),
    root: Path = typer.Option(None, envvar="VIREID_DATA", help="dataset root"),
    manifest: Path = typer.Option(None, help="folder protocol: CSV manifest instead of a tree"),
    trials: str = typer.Option("all", help="'all' or the number of trials"),
    trial: int = typer.Option(None, help="RegDB: the split (must match the model)"),
    rerank: bool = typer.Option(False, help="k-reciprocal re-ranking"),
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
    """Evaluate a checkpoint or a features file on a protocol; mean ± std over trials."""
    if (checkpoint is None) == (features is None):
        raise ValueError("give exactly one of CHECKPOINT or --features FILE")
    n_trials = parse_trials(trials)
    if corrupt is not None:
        if features is not None:
            raise ValueError("--corrupt re-runs the model on corrupted images: give a CHECKPOINT")
        from .robust_eval import corrupted_eval, parse_plan

        return corrupted_eval(
            checkpoint,
            parse_plan(corrupt, severity, corrupt_seed),
            sweep=sweep,
            mce_reference=mce_reference,
            protocol=protocol,
            root=root,
            manifest=manifest,
            n_trials=n_trials,
            trial=trial,
            rerank=rerank,
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
        if protocol is None:
            raise ValueError("--protocol is required with --features")
        spec = get_protocol(protocol)
        chosen = [trial] if spec.trial_is_split and trial else resolve_trials(protocol, n_trials)
        result = _from_features(features, protocol, root, chosen, manifest, rerank)
    else:
        from ..engine.distributed import DistInfo
        from ..engine.run import run_evaluation

        model, cfg, state, device = load_model(checkpoint)
        if protocol:
            cfg.eval.protocol = protocol
        spec = get_protocol(cfg.eval.protocol)
        chosen = checkpoint_trials(spec, checkpoint, state.get("trial"), trial, n_trials)
        result = run_evaluation(
            model, cfg, device, DistInfo(), chosen, rerank, root=root, manifest=manifest
        )
    console.print(results_table(result))
    console.print("csv: " + result.csv_line(), highlight=False)
    if out:
        write_results(out, result)
    if report:
        from ..report import write_report

        console.print(f"report: {write_report(report, result)}", highlight=False)
