"""The ``lnlkit`` command line (also ``python -m lnlkit``).

::

    lnlkit run --method ce --dataset digits --noise symmetric:0.4 --seed 0 --out runs/ce-sym40-s0
    lnlkit run --profile quick --method dividemix --noise pairflip:0.4 --out runs/dm-pair40-s0   # as make demo does
    lnlkit run --profile quick --method ce,smr --noise pairflip:0.4 --runs-root runs/quick    # the batch's layout
    lnlkit reproduce --profile quick [--only 00_quickstart ...] [--jobs 2] [--out runs/]
    lnlkit reproduce --profile paper --devices cuda:0,cuda:1        # or --devices all
    lnlkit reproduce --profile paper --executor slurm --partition gpu --gpus-per-job 1 --time 720
    lnlkit table runs/ [--format md|csv|latex]
    lnlkit noise --dataset digits --noise instance:0.4 --seed 0
    lnlkit detect my_images/ --methods dividemix,smr,sop,cleanlab --out labels/   # which of my labels are wrong?
    lnlkit detect table.csv --label species --out labels/
    lnlkit list
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "build_parser"]

PROFILE_NAMES = ("smoke", "quick", "full", "paper")  # lnlkit.reproduce.PROFILES (not imported at start-up)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lnlkit", description="Learning with noisy labels: run, tabulate, inspect.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a method and write a run folder")
    run.add_argument(
        "--method",
        required=True,
        help="method name (see `lnlkit list`); with --runs-root several, comma-separated, trained one after another",
    )
    run.add_argument("--dataset", default="digits", help="data set name (default: the embedded digits)")
    run.add_argument("--root", default=None, help="folder holding the data set (default $LNLKIT_DATA or ./data)")
    run.add_argument("--noise", default="none", help="noise spec, e.g. symmetric:0.4, pairflip:0.45, cifar10n:worst")
    run.add_argument("--seed", type=int, default=0, help="seed of the noise and of training")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="run folder to write")
    where.add_argument(
        "--runs-root",
        metavar="DIR",
        help="write to the batch's layout, DIR/<method>/<dataset>_<noise>_s<seed>/ (lnlkit.runs.run_folder), "
        "resuming each run and skipping complete ones",
    )
    run.add_argument(
        "--profile",
        default=None,
        choices=PROFILE_NAMES,
        help="configure the method as this batch profile does (its preset and schedule, e.g. quick = make demo)",
    )
    run.add_argument(
        "--preset",
        default=None,
        help="hyperparameter preset (default: the profile's, else the method's preset for this data set and noise, "
        "`Method.preset_for`, if it has one); auto: sized to the data set (docs/detect.md#the-auto-preset)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one hyperparameter (repeatable), e.g. weights_path=FILE, pretrained=false, "
        "normalization=dataset",
    )
    run.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    rep = sub.add_parser(
        "reproduce",
        help="train a profile's results grid, execute the notebooks and regenerate the results",
        description="Train the profile's results grid (every table method x noise setting x seed, one "
        "`lnlkit run` process per noise setting and seed), execute every notebook with papermill over its "
        "cells, skipping runs and cells that are complete, then run 99_results.ipynb to write "
        "results/<profile>.md/.csv/.tex and the figures.",
    )
    rep.add_argument(
        "--profile",
        default="quick",
        choices=PROFILE_NAMES,
        help="smoke: about a minute (tests); quick: every method x noise column on digits, one seed (make demo, "
        "a 2-core CPU); full: the same grid with three seeds and the notebooks' variants; paper: the papers' "
        "settings (GPU)",
    )
    rep.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NOTEBOOK",
        help="execute only these notebooks ('table': the results table's grid)",
    )
    rep.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: CPU count, 1 on a GPU)")
    rep.add_argument("--out", default="runs", help="runs go to <out>/<profile>/ (default runs/)")
    rep.add_argument("--results", default="results", help="folder of the results tables (default results/)")
    rep.add_argument("--figures", default="figures", help="folder of the summary figures (default figures/)")
    rep.add_argument("--notebooks", default=None, help="folder of the notebooks (default: the repository's)")
    rep.add_argument("--device", default=None, help="auto, cpu or cuda (default: the profile's)")
    rep.add_argument("--timeout", type=float, default=None, help="seconds allowed per notebook")
    rep.add_argument("--no-results", action="store_true", help="skip 99_results.ipynb")
    _add_cluster_arguments(rep)
    rep.add_argument("--dry-run", action="store_true", help="list the notebook runs without executing them")

    table = sub.add_parser("table", help="aggregate run folders into a results table")
    table.add_argument("paths", nargs="+", help="run folders or folders containing them (searched recursively)")
    table.add_argument("--format", choices=("md", "csv", "latex"), default="md")
    table.add_argument("--runs", action="store_true", help="one row per run instead of mean ± std over seeds")

    noise = sub.add_parser("noise", help="inject noise and print the realised rate and transition matrix")
    noise.add_argument("--dataset", default="digits")
    noise.add_argument("--root", default=None)
    noise.add_argument("--noise", required=True)
    noise.add_argument("--seed", type=int, default=0)

    sub.add_parser("list", help="list methods with their presets, data sets and noise kinds")
    _add_detect_parser(sub)
    return parser


def _add_detect_parser(sub) -> None:
    det = sub.add_parser(
        "detect",
        help="find the training samples whose labels look wrong, with every method and their consensus",
        description="Train each method (preset auto: sized to the data) on the given labels, one run folder per "
        "method and seed under OUT/runs/ (resumed, complete ones skipped), and write OUT/label_issues.csv (one row "
        "per sample, most suspicious first), OUT/label_summary.json and OUT/label_transition.csv "
        "(docs/detect.md).",
    )
    det.add_argument(
        "data",
        help="a folder with one sub-folder per class, a CSV table (with --label), a CSV of path,label image files, "
        "or a data set name (digits, cifar10, ...)",
    )
    det.add_argument("--label", default=None, help="the label column of a CSV table")
    det.add_argument("--id-column", default=None, help="a CSV table's column of sample ids (default: row numbers)")
    det.add_argument("--methods", default=",".join(_DETECT_DEFAULT), help="comma-separated; add cleanlab to compare")
    det.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (scores averaged)")
    det.add_argument("--out", required=True, help="output folder")
    det.add_argument("--preset", default="auto", help="auto (default: sized to the data) or a preset every method has")
    det.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="override one hyperparameter of one method (repeatable), e.g. dividemix.epochs=30",
    )
    det.add_argument("--folds", type=int, default=5, help="folds of cleanlab's out-of-sample probabilities")
    det.add_argument("--holdout", type=float, default=None, help="hold out this fraction as a test split")
    det.add_argument("--root", default=None, help="folder of a named data set")
    det.add_argument("--noise", default="none", help="a named data set only: inject this noise (benchmarks)")
    det.add_argument("--noise-seed", type=int, default=0, help="seed of --noise and of --holdout")
    det.add_argument("--device", default="auto", help="auto, cpu or cuda")
    det.add_argument("--quiet", action="store_true", help="no progress bars")
    det.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)  # a batch job: train, then stop
    _add_cluster_arguments(det)


# lnlkit.detect.DETECT_METHODS (not imported at start-up)
_DETECT_DEFAULT = ("dividemix", "smr", "promix", "comining", "mememomentum", "sop")


def _detect_overrides(items: Sequence[str], methods: Sequence[str]) -> dict[str, dict]:
    """``["dividemix.epochs=30"]`` -> ``{"dividemix": {"epochs": 30}}``, typed by each method's config."""
    from lnlkit.methods import method_class, parse_overrides

    grouped: dict[str, list[str]] = {}
    for item in items:
        key = item.split("=", 1)[0]
        if "." not in key:
            raise ValueError(f"--set expects METHOD.KEY=VALUE in detect, got {item!r}")
        method, rest = item.split(".", 1)
        if method.lower() not in methods:
            raise ValueError(f"--set {item!r}: {method} is not among --methods ({', '.join(methods)})")
        grouped.setdefault(method.lower(), []).append(rest)
    out = {}
    for method, rest in grouped.items():
        config = method_class("ce" if method == "cleanlab" else method).Config
        out[method] = parse_overrides(config, rest)
    return out


def _cmd_detect(args: argparse.Namespace) -> int:
    import numpy as np

    from lnlkit import detect

    methods = [m.strip().lower() for m in args.methods.split(",") if m.strip()]
    overrides = _detect_overrides(args.overrides, methods)
    data = detect.load_detect_data(
        args.data, args.label, args.root, args.noise, args.noise_seed, args.holdout, args.id_column
    )
    cluster = _cluster_options(args)
    batch = cluster["devices"] is not None or cluster["executor"] != "local"
    if batch and not args.train_only:
        argv = [args.data, "--out", args.out, "--preset", args.preset, "--folds", str(args.folds)]
        argv += ["--noise", args.noise, "--noise-seed", str(args.noise_seed)]
        named = (("--label", args.label), ("--id-column", args.id_column), ("--root", args.root))
        for flag, value in (*named, ("--holdout", args.holdout)):
            if value is not None:
                argv += [flag, str(value)]

        def rate() -> float | None:  # the first stage's estimate, for Co-mining
            others = [m for m in methods if m not in detect._NEEDS_RATE]
            if not others:
                return None
            frame = detect.find_label_issues(
                data,
                others,
                args.seeds,
                out=None,
                device="cpu",
                progress=False,
                preset=args.preset,
                overrides={k: v for k, v in overrides.items() if k in others},
                folds=args.folds,
                runs_root=Path(args.out) / "runs",
            )
            return float(min(0.95, max(0.0, float(np.median([frame[f"flag_{m}"].mean() for m in others])))))

        outcomes = detect.run_detect_batch(
            argv, args.overrides, methods, args.seeds, data, args.out, args.folds, rate, echo=_line_printer(), **cluster
        )
        if any(o.status == "failed" for o in outcomes):
            return 1
    frame = detect.find_label_issues(
        data,
        methods,
        args.seeds,
        out=args.out,
        device=args.device,
        progress=not args.quiet,
        preset=args.preset,
        overrides=overrides,
        folds=args.folds,
        train_only=args.train_only,
    )
    if args.train_only:
        return 0
    summary = frame.attrs["summary"]
    print(
        f"{summary['n_issues']} of {summary['n_samples']} labels look wrong (estimated noise rate "
        f"{summary['estimated_noise_rate']:.3f}; is_issue: flagged by more than half of {len(methods)} method(s))"
    )
    with_names = frame.head(10)[["rank", "sample_id", "given_class", "suggested_class", "consensus", "n_flags"]]
    print(with_names.to_string(index=False))
    print(f"written: {Path(args.out) / 'label_issues.csv'}, label_summary.json, label_transition.csv")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from lnlkit.data import load_dataset
    from lnlkit.runs import is_complete_run, run_folder

    names = [m.strip() for m in args.method.split(",") if m.strip()]
    if len(names) != 1 and args.runs_root is None:
        raise ValueError(f"--out takes one method, got {args.method!r}; several methods need --runs-root")
    # every method is configured (and validated) before any file is written
    methods = [_configured_method(name, args) for name in names]
    failed = []
    for name, method in zip(names, methods):
        out = (
            args.out
            if args.runs_root is None
            else run_folder(args.runs_root, name, args.dataset, args.noise, args.seed)
        )
        if args.runs_root is not None and is_complete_run(out):
            print(f"{name}: {out} is complete, skipped")
            continue
        # the preset's data pipeline (its official normalisation), recorded in config.json by fit
        data = load_dataset(args.dataset, args.root, method=method).with_noise(args.noise, seed=args.seed)
        resume = args.resume or args.runs_root is not None
        try:
            run = method.fit(data, out=out, device=args.device, resume=resume, progress=not args.quiet)
        except Exception as err:
            if len(names) == 1:
                raise
            if isinstance(err, (ValueError, FileNotFoundError)):  # bad input: the usual one line, as for one method
                print(f"lnlkit run: error: {err}", file=sys.stderr)
            else:
                import traceback  # one failing method does not stop the others; the exit code says it failed

                traceback.print_exc()
            print(f"FAILED {name}: {out}", flush=True)
            failed.append(name)
            continue
        _print_run(name, data, args.seed, run)
    if failed:
        print(f"lnlkit run: {len(failed)} of {len(names)} method(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _configured_method(name: str, args: argparse.Namespace):
    """The method as ``--profile`` / ``--preset`` / ``--set`` / ``--epochs`` configure it."""
    from lnlkit.methods import get_method, method_class, parse_overrides

    cls = method_class(name)
    overrides = parse_overrides(cls.Config, args.overrides)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.preset == "auto" and args.profile is None:  # sized to the data: load it first
        from lnlkit.data import load_dataset
        from lnlkit.presets.auto import auto_method

        data = load_dataset(args.dataset, args.root).with_noise(args.noise, seed=args.seed)
        method = auto_method(name, data, **overrides)
    elif args.profile is not None:  # the profile's preset and schedule, then --preset / --set on top
        from lnlkit.reproduce import profile_method

        method = profile_method(name, args.profile, args.dataset, args.noise, args.preset, **overrides)
    else:
        preset = args.preset if args.preset is not None else cls.preset_for(args.dataset, args.noise)
        method = get_method(name, preset, **overrides)
    method.pretrained_record()  # a preset that starts from ImageNet weights needs weights_path (or pretrained=false)
    return method


def _print_run(name: str, data, seed: int, run) -> None:
    res = run.result
    rate = "unknown" if res.get("realized_rate") is None else f"{res['realized_rate']:.3f}"
    print(f"{name} on {data.name} with {data.noise.spec} (realised rate {rate}), seed {seed}")
    if res.get("test_acc_last") is None:
        print("  test accuracy: none (the data set has no test split)")
    else:
        print(
            f"  test accuracy: last {res['test_acc_last']:.2f}  best {res['test_acc_best']:.2f} "
            f"(epoch {res['best_epoch']})  reported {res['reported']:.2f} as {res['reported_as']}"
        )
    if res.get("sel_precision") is not None:
        print(f"  selection: precision {res['sel_precision']:.3f}  recall {res['sel_recall']:.3f}")
    if res.get("sel_auroc") is not None:
        print(f"  clean-score AUROC: {res['sel_auroc']:.3f}")
    print(f"  run folder: {run.path}", flush=True)


def _cmd_table(args: argparse.Namespace) -> int:
    from lnlkit.runs import format_table, results_table

    for p in args.paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"no such folder: {p}")
    frame = results_table(args.paths, aggregate=not args.runs)
    if frame.empty:
        print(f"no run folders under {', '.join(args.paths)}", file=sys.stderr)
        return 1
    sys.stdout.write(format_table(frame, args.format))
    return 0


def _cmd_noise(args: argparse.Namespace) -> int:
    import numpy as np

    from lnlkit.data import load_dataset

    noisy = load_dataset(args.dataset, args.root).with_noise(args.noise, seed=args.seed)
    nl = noisy.noise
    print(f"{noisy.name}: {nl.spec} seed {args.seed}")
    rate = "unknown" if nl.realized_rate is None else f"{nl.realized_rate:.4f}"
    print(f"  realised rate: {rate}   nominal: {nl.nominal_rate}   classes: {nl.num_classes}")
    if nl.transition is not None:
        with np.printoptions(precision=2, suppress=True, linewidth=200):
            print("  realised transition matrix (rows = true class, columns = given label):")
            print(np.array2string(nl.transition, prefix="  "))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from lnlkit import reproduce as rp

    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    if args.dry_run:
        for job in rp.plan_jobs(args.profile, Path(args.out) / args.profile, only=args.only, device=args.device):
            print(f"{'complete' if job.is_complete() else 'to do':8s}  {job.name}")
        return 0
    outcomes = rp.reproduce(
        args.profile,
        out=args.out,
        results=args.results,
        figures=args.figures,
        only=args.only,
        jobs=args.jobs,
        notebooks_dir=args.notebooks,
        device=args.device,
        run_results=not args.no_results,
        timeout=args.timeout,
        echo=_line_printer(),
        **_cluster_options(args),
    )
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _line_printer():
    """Print whole lines from the batch's worker threads (print() writes the text and the newline apart)."""
    import threading

    lock = threading.Lock()

    def echo(line: str) -> None:
        with lock:
            sys.stdout.write(f"{line}\n")
            sys.stdout.flush()

    return echo


def _add_cluster_arguments(rep: argparse.ArgumentParser) -> None:
    """`reproduce` on several GPUs of this machine (--devices) or on a SLURM cluster (--executor slurm)."""
    rep.add_argument(
        "--devices",
        default=None,
        metavar="DEV[,DEV...]",
        help="run one job per device at a time, each holding its device to the end: cuda:0,cuda:1 or "
        "all (a name twice: two jobs on that GPU)",
    )
    rep.add_argument(
        "--executor",
        default="local",
        help="local (default: this machine) or slurm (one SLURM job per grid cell, through submitit; "
        "pip install 'lnlkit[cluster]')",
    )
    slurm = rep.add_argument_group("SLURM (with --executor slurm)")
    slurm.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's default)")
    slurm.add_argument("--gpus-per-job", type=int, default=None, help="GPUs per job (default 1)")
    slurm.add_argument("--cpus-per-job", type=int, default=None, help="CPU cores per job (default 4)")
    slurm.add_argument(
        "--time",
        type=int,
        default=None,
        metavar="MIN",
        help="time limit per job in minutes (default 1440); at the limit a job is checkpointed and requeued",
    )
    slurm.add_argument(
        "--retries",
        type=int,
        default=None,
        help="resubmissions of a job lost without a result (cancelled, preempted, node failure; default 3)",
    )
    slurm.add_argument(
        "--slurm",
        dest="slurm_extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. --slurm account=lab --slurm qos=high (repeatable)",
    )


def _cluster_options(args: argparse.Namespace) -> dict:
    from lnlkit import reproduce as rp

    given = {
        "partition": args.partition,
        "gpus_per_job": args.gpus_per_job,
        "cpus_per_job": args.cpus_per_job,
        "time_min": args.time,
        "retries": args.retries,
    }
    given = {k: v for k, v in given.items() if v is not None}
    extra = rp.parse_slurm_options(args.slurm_extra)
    slurm = None
    if given or extra or args.executor == "slurm":
        slurm = rp.SlurmOptions(**given, extra=extra)
    return {"devices": args.devices, "executor": args.executor, "slurm": slurm}


def _cmd_list(args: argparse.Namespace) -> int:
    from lnlkit.data import DATASETS
    from lnlkit.methods import list_methods, method_class
    from lnlkit.noise import NOISE_KINDS

    print("methods (presets):")
    for name in list_methods():
        print(f"  {name:12s} {', '.join(sorted(method_class(name).PRESETS))}")
    print("data sets:", ", ".join(DATASETS))
    print("noise kinds:", ", ".join(NOISE_KINDS))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "run": _cmd_run,
        "reproduce": _cmd_reproduce,
        "table": _cmd_table,
        "noise": _cmd_noise,
        "list": _cmd_list,
        "detect": _cmd_detect,
    }
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lnlkit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
