"""Batch reproduction: train a profile's results grid, execute the notebooks with papermill, aggregate the results.

A *profile* fixes the size of the work: ``smoke`` (about a minute, for the tests), ``quick`` (every method in every
noise column of the results table on the embedded digits, one seed, at :data:`TABLE_SCHEDULES`: ``make demo`` on a
2-core CPU), ``full`` (the same grid with three seeds, and the notebooks' variants: the README's table) and ``paper``
(the papers' data sets and settings, for a GPU).

The batch has two stages. First the *table grid*: every method of the table on every noise setting and seed, one plain
``lnlkit run`` process (no notebook kernel) per noise setting and seed, each run kept under
``<out>/<profile>/<method>/<dataset>_<noise>_s<seed>/``. Then every notebook, executed once per cell of its own grid
(usually one cell); a notebook whose cell is in the table grid finds its method's run complete and trains only its
variants (ablations, switches). A run or grid cell that is complete is skipped, so an interrupted batch resumes where
it stopped (and every run resumes from its last checkpoint). Finally ``99_results.ipynb`` writes
``results/<profile>.md``, ``.csv`` and ``.tex`` and the figures.

Notebooks call :func:`profile_method` and :func:`run_folder` so that they name and size their runs exactly as the
batch expects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lnlkit.runs import (
    RunResult,
    is_complete_run,
    noise_tag,
    results_table,
    run_folder,
    summary_table,
)
from lnlkit.tables import METHOD_ORDER
from lnlkit.train.recorder import atomic_write_bytes, write_json

__all__ = [
    "Grid",
    "MethodPlan",
    "Profile",
    "NotebookSpec",
    "Job",
    "RunJob",
    "CommandJob",
    "TABLE_METHODS",
    "TABLE_NOISES",
    "TABLE_SCHEDULES",
    "JobOutcome",
    "PROFILES",
    "NOTEBOOKS",
    "RESULTS_NOTEBOOK",
    "profile_method",
    "compare_with_ce",
    "COMPARISON_COLUMNS",
    "run_folder",
    "noise_tag",
    "plan_jobs",
    "reproduce",
    "summary_table",
    "main_preset_runs",
    "table_runs",
    "write_results",
    "save_figure",
    "default_notebooks_dir",
    "EXECUTORS",
    "SlurmOptions",
    "parse_devices",
    "parse_slurm_options",
    "check_data",
    "check_slurm",
]


# ------------------------------------------------------------------------------------------- profiles
@dataclass(frozen=True)
class Grid:
    """Cells to run: one data set, noise settings x seeds."""

    dataset: str
    noises: tuple[str, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class MethodPlan:
    """How a profile sizes one method: a preset (``None``: the method picks per data set and noise) and overrides."""

    preset: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


# The rows and columns of the paper-layout results table: plain CE (its best and last epochs are the two reference
# rows), the five methods, SOP+ alone, and Prune4ReL next to its Uniform baseline at one ratio, in the tables' order.
TABLE_METHODS: tuple[str, ...] = METHOD_ORDER
TABLE_NOISES: tuple[str, ...] = (
    "symmetric:0.2",
    "symmetric:0.5",
    "symmetric:0.8",
    "pairflip:0.4",
    "instance:0.4",
    "openset:0.2+symmetric:0.2",
)


@dataclass(frozen=True)
class Profile:
    """A named size of the batch.

    Attributes
    ----------
    grid : Grid
        The notebooks' cell (one data set, noise settings x seeds) unless a :class:`NotebookSpec` names its own.
    methods : dict
        How each method is configured (:class:`MethodPlan`).
    table : Grid, optional
        The results table's grid: every method of ``table_methods`` on every cell (one ``lnlkit run`` process per
        cell), trained before the notebooks.  ``None``: the table holds what the notebooks train.
    table_methods : tuple of str
    notebook_parameters : dict
        Per notebook (file stem), parameters this profile passes on top of the notebook's defaults (e.g. fewer
        selection ratios in ``quick``).
    """

    name: str
    description: str
    grid: Grid
    methods: dict[str, MethodPlan]
    device: str = "auto"
    table: Grid | None = None
    table_methods: tuple[str, ...] = TABLE_METHODS
    notebook_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


# Prune4ReL and the pruning baselines of its paper (methods/prune4rel.py)
_PRUNERS = (
    "prune4rel",
    "prune:uniform",
    "prune:smallloss",
    "prune:uncertainty",
    "prune:forgetting",
    "prune:grand",
    "prune:moderate",
    "prune:kcentergreedy",
    "prune:glister",
)

# The results table's schedules (quick and full): each digits preset with its schedule cut to about a third, every
# epoch-counted setting scaled with it (warm-up, LR milestones and decay start, SMR's recalibration period, ProMix's
# label-guessing start and ramp, Me-Momentum's phase and round lengths); the algorithm, its constants and the batch
# unchanged.  At the presets' own schedules the 54 runs of one seed cost about 2,400 CPU seconds (bench/bench_cost.py),
# over 20 min on a 2-core CPU; at these the grid took 7.5 min there, so make demo fits its 15 minutes.  Prune4ReL
# and Uniform keep their 5 warm-up epochs (a shorter warm-up leaves the confidences meaningless) and train 50
# instead of 150 epochs on S.
TABLE_SCHEDULES: dict[str, dict[str, Any]] = {
    "ce": {"epochs": 40},
    "dividemix": {"epochs": 20, "warm_up": 3, "lr_milestones": (10,)},
    "smr": {"epochs": 20, "warm_up": 3, "lr_milestones": (10,), "recal_period": 2},
    "promix": {"epochs": 20, "start_expand": 8, "rampup_length": 2.0},
    # Co-mining keeps its preset's schedule: its epochs are cheap (about 0.6 CPU s), and at a third (17 epochs) it
    # fell below CE's best epoch on symmetric 0.5 and pair-flip 0.4 (87.9 and 79.8 against 95.3 and 83.3, seed 0)
    "comining": {},
    "mememomentum": {"max_phase_a_epochs": 7, "round_epochs": 4, "round_milestones": (2, 3)},
    "sop": {"epochs": 20},
    **{m: {"epochs": 50} for m in _PRUNERS},
}

# notebooks' cell in the digits profiles: a column of the results table, so they reuse the grid's runs
_DIGITS_CELL = Grid("digits", ("symmetric:0.5",), (0,))

PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        "a few epochs on digits, one noise setting and one seed: checks that every notebook runs (tests)",
        Grid("digits", ("symmetric:0.4",), (0,)),
        {
            "ce": MethodPlan("digits", {"epochs": 4}),
            # one warm-up epoch, then SSL epochs (and, for SMR, one recalibration epoch at e = 2)
            "dividemix": MethodPlan("digits", {"epochs": 4, "warm_up": 1}),
            "smr": MethodPlan("digits", {"epochs": 4, "warm_up": 1, "recal_period": 3}),
            # one warm-up epoch, then three epochs of the ranking / mining / relabelling loop
            "comining": MethodPlan("digits", {"epochs": 4, "warmup_epochs": 1}),
            # two outer loops of phase A (<= 2 epochs) and <= 2 rounds of 2 epochs: at most 12 epochs
            "mememomentum": MethodPlan(
                "digits",
                {
                    "outer_loops": 2,
                    "max_phase_a_epochs": 2,
                    "round_epochs": 2,
                    "round_milestones": (1,),
                    "max_inner_rounds": 2,
                },
            ),
            # one warm-up epoch, then SSL epochs with LGA from e = 3 so every selection step shows
            "promix": MethodPlan("digits", {"epochs": 4, "warm_up": 1, "start_expand": 2}),
            # SOP+ on all data, and one warm-up epoch + two epochs on the subset for Prune4ReL and its baselines
            "sop": MethodPlan("digits", {"epochs": 3}),
            **{m: MethodPlan("digits", {"epochs": 2, "warmup_epochs": 1}) for m in _PRUNERS},
        },
        device="cpu",
        # the notebooks' own cell: the grid trains each method's main run, the notebooks add their variants
        table=Grid("digits", ("symmetric:0.4",), (0,)),
    ),
    "quick": Profile(
        "quick",
        "every method in every column of the results table on the embedded digits, one seed, at the table's "
        "schedules (make demo on a 2-core CPU); the notebooks skip their ablation and switch variants",
        _DIGITS_CELL,
        {m: MethodPlan("digits", dict(TABLE_SCHEDULES[m])) for m in (*TABLE_METHODS[:7], *_PRUNERS)},
        device="cpu",
        table=Grid("digits", TABLE_NOISES, (0,)),
        notebook_parameters={
            "10_promix": {"switches": False},
            "11_dividemix_smr": {"ablation": False},
            "12_comining": {"switches": False},
            "13_me_momentum": {"compare_fixed": False},
            "14_prune4rel": {"ratios": [0.2], "baselines": ["uniform", "smallloss"], "variants": False},
        },
    ),
    "full": Profile(
        "full",
        "the quick grid with three seeds and the notebooks' variants: the README's results table",
        _DIGITS_CELL,
        {m: MethodPlan("digits", dict(TABLE_SCHEDULES[m])) for m in (*TABLE_METHODS[:7], *_PRUNERS)},
        device="cpu",
        table=Grid("digits", TABLE_NOISES, (0, 1, 2)),
    ),
    "paper": Profile(
        "paper",
        "the papers' data sets and settings (CIFAR-10 from ./data or $LNLKIT_DATA; needs a GPU)",
        # DivideMix's CIFAR-10 settings; seed 123 regenerates the official noisy labels
        Grid(
            "cifar10",
            ("symmetric-inclusive:0.2", "symmetric-inclusive:0.5", "symmetric-inclusive:0.8", "asym-cifar10:0.4"),
            (123,),
        ),
        {
            "ce": MethodPlan(None),
            "dividemix": MethodPlan(None),
            "smr": MethodPlan(None),
            # cifar10nc / cifar100nc / cifar80no by the noise spec (CoMining.preset_for)
            "comining": MethodPlan(None),
            "mememomentum": MethodPlan(None),
            "promix": MethodPlan(None),
            # SOP+/Prune4ReL's settings are CIFAR-N ones (notebook 14's paper grid uses cifar10n:worst)
            "sop": MethodPlan("cifar10n"),
            **{m: MethodPlan("cifar10n-sop") for m in _PRUNERS},
        },
    ),
}


def _profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def profile_method(
    method: str,
    profile: str,
    dataset: str | None = None,
    noise: str | None = None,
    preset: str | None = None,
    **overrides: Any,
):
    """The method configured as ``profile`` runs it.

    Parameters
    ----------
    method : str
        Method name, e.g. ``"ce"``.
    profile : {"smoke", "quick", "full", "paper"}
    dataset, noise : str, optional
        Used when the profile leaves the preset to the method (``paper``): ``Method.preset_for(dataset, noise)``
        chooses (by default the preset named after the data set).
    preset : str, optional
        Use this preset instead of the profile's (e.g. an ablation variant); the profile's overrides still apply.
    **overrides
        Hyperparameters set on top of the profile's.

    Returns
    -------
    Method
    """
    from lnlkit.methods import get_method, method_class

    prof = _profile(profile)
    if method not in prof.methods:
        raise ValueError(f"profile {profile!r} has no plan for method {method!r}; it covers {', '.join(prof.methods)}")
    plan = prof.methods[method]
    preset = preset or plan.preset
    if preset is None:
        preset = method_class(method).preset_for(dataset or prof.grid.dataset, noise)
    return get_method(method, preset=preset, **{**plan.overrides, **overrides})


# the columns a notebook shows when it puts its method next to CE
COMPARISON_COLUMNS = (
    "method",
    "preset",
    "noise",
    "reported",
    "reported_as",
    "test_acc_best",
    "test_acc_last",
    "sel_precision",
    "sel_recall",
    "wall_s",
)


def compare_with_ce(
    runs: RunResult | Sequence[RunResult],
    data: Any,
    *,
    profile: str,
    runs_root: str | os.PathLike,
    dataset: str,
    noise: str,
    seed: int,
    device: str = "auto",
):
    """Put runs next to plain CE on the same noisy labels and seed.

    The CE run is the profile's (:func:`profile_method`), kept where the batch keeps it (:func:`run_folder`), so a
    notebook reuses the run ``00_quickstart`` (or another notebook) trained, resumes an interrupted one, and trains it
    only when it is missing.

    Parameters
    ----------
    runs : RunResult or sequence of RunResult
        The runs to compare, trained on ``data``.
    data : NoisyDataset
        The noisy training set of ``runs``.
    profile : {"smoke", "quick", "full", "paper"}
    runs_root : path
    dataset, noise : str
        The data set name and noise spec the runs were named by (``run_folder``).
    seed : int
    device : str

    Returns
    -------
    ce_run : RunResult
    table : pandas.DataFrame
        One row per run, CE first, with :data:`COMPARISON_COLUMNS`.

    Raises
    ------
    ValueError
        When a run was trained on other noisy labels than ``data`` (another noise spec or noise seed).
    """
    runs = [runs] if isinstance(runs, RunResult) else list(runs)
    for run in runs:
        if (run.config.get("noise"), run.config.get("noise_seed")) != (data.noise.spec, data.seed):
            raise ValueError(
                f"{run.path} was trained on {run.config.get('noise')} (noise seed "
                f"{run.config.get('noise_seed')}), not on the labels of {data.noise.spec} (noise seed "
                f"{data.seed})"
            )
    ce = profile_method("ce", profile, dataset=dataset, noise=noise)
    ce_run = ce.fit(data, out=run_folder(runs_root, "ce", dataset, noise, seed), device=device, resume=True)
    table = results_table([ce_run.path, *(r.path for r in runs)])
    return ce_run, table[list(COMPARISON_COLUMNS)].reset_index(drop=True)


# ------------------------------------------------------------------------------------------- notebooks
@dataclass(frozen=True)
class NotebookSpec:
    """A notebook of the batch.

    Attributes
    ----------
    filename : str
        File in the notebooks folder.
    methods : tuple of str
        Methods whose run folders it writes for each grid cell; empty for notebooks executed once.
    grids : dict
        Per-profile grid replacing the profile's default (e.g. a method's own paper settings).
    """

    filename: str
    methods: tuple[str, ...] = ()
    grids: dict[str, Grid] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return Path(self.filename).stem

    def grid(self, profile: Profile) -> Grid | None:
        if not self.methods:
            return None
        return self.grids.get(profile.name, profile.grid)


# In the digits profiles every notebook's cell is a column of the results table (the profile's grid, symmetric:0.5
# seed 0), so its method's main run comes from the table grid and the notebook trains only its variants.
NOTEBOOKS: tuple[NotebookSpec, ...] = (
    NotebookSpec("00_quickstart.ipynb", methods=("ce",)),
    NotebookSpec("01_label_noise.ipynb"),
    # the main run plus two warm-up penalty variants
    NotebookSpec("10_promix.ipynb", methods=("promix",)),
    # two runs plus two ablation runs
    NotebookSpec("11_dividemix_smr.ipynb", methods=("dividemix", "smr")),
    # the main run, an open-set run (a table column) and three switch variants; paper: Co-mining's own CIFAR-10
    # settings (Table 1, its RandomState(0) noise recipe with seed 0)
    NotebookSpec(
        "12_comining.ipynb",
        methods=("comining",),
        grids={
            "paper": Grid(
                "cifar10", ("symmetric:0.2", "symmetric:0.5", "symmetric:0.8", "pairflip:0.2", "pairflip:0.4"), (0,)
            ),
        },
    ),
    # the paper's main setting is instance-dependent noise; two runs (official and fixed switches) per cell; on a
    # GPU the CIFAR-10 settings of the official README (seed 1)
    NotebookSpec(
        "13_me_momentum.ipynb",
        methods=("mememomentum",),
        grids={
            **{p: Grid("digits", ("instance:0.4",), (0,)) for p in ("quick", "full")},
            "paper": Grid("cifar10", ("symmetric:0.2", "instance:0.2", "instance:0.4"), (1,)),
        },
    ),
    # SOP+ on all data, Prune4ReL and its baselines at each selection ratio, two switch variants
    NotebookSpec(
        "14_prune4rel.ipynb",
        methods=("sop", "prune4rel"),
        grids={"paper": Grid("cifar10", ("cifar10n:worst",), (0,))},
    ),
)
RESULTS_NOTEBOOK = NotebookSpec("99_results.ipynb")


def default_notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (the package is installed in editable mode from the repository)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


@dataclass(frozen=True)
class Job:
    """One papermill execution: a notebook with its parameters, the run folders it must leave complete, and where
    its executed copy, log and completion marker go."""

    notebook: NotebookSpec
    name: str
    parameters: dict[str, Any]
    runs: tuple[Path, ...]
    executed: Path

    @property
    def log(self) -> Path:
        return self.executed.with_suffix(".log")

    @property
    def marker(self) -> Path:
        return self.executed.with_suffix(".done.json")

    def is_complete(self) -> bool:
        """Executed without error before and every run folder it writes is complete."""
        return self.marker.exists() and all(is_complete_run(r) for r in self.runs)


@dataclass(frozen=True)
class RunJob:
    """One column cell of the results table's grid (a noise setting and seed): every table method trained as the
    profile configures it, one after another, by one ``lnlkit run --runs-root`` process (no notebook kernel; one
    process per cell rather than per run saves the 3-4 s of importing torch and its optimizers per run).  Its run
    folders are its completion marker; a rerun skips the complete ones and resumes the others. ``log`` keeps its
    output."""

    name: str
    parameters: dict[str, Any]  # profile, methods, dataset, noise, seed, device, runs_root
    runs: tuple[Path, ...]
    log: Path

    @property
    def executed(self) -> Path:  # what a failure report points to
        return self.log

    def is_complete(self) -> bool:
        return all(is_complete_run(r) for r in self.runs)

    def command(self) -> list[str]:
        p = self.parameters
        return [
            sys.executable,
            "-m",
            "lnlkit",
            "run",
            "--profile",
            p["profile"],
            "--method",
            ",".join(p["methods"]),
            "--dataset",
            p["dataset"],
            "--noise",
            p["noise"],
            "--seed",
            str(p["seed"]),
            "--device",
            p["device"],
            "--runs-root",
            p["runs_root"],
            "--quiet",
        ]


@dataclass(frozen=True)
class CommandJob(RunJob):
    """A batch job that runs one ``lnlkit`` command line (``parameters["argv"]``, with ``--device`` from the slot),
    e.g. one ``lnlkit detect --train-only`` per method and seed (:func:`lnlkit.detect.run_detect_batch`).  Like a
    table cell it is complete when its run folders are; a module-level class, so SLURM can pickle it."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "lnlkit", *self.parameters["argv"], "--device", self.parameters["device"]]


TABLE_STAGE = "table"  # the name ``only`` uses for the table grid


@dataclass
class JobOutcome:
    job: Job
    status: str  # "ok" | "skipped" | "failed"
    seconds: float = 0.0
    error: str = ""


def plan_jobs(
    profile: str,
    runs_root: str | os.PathLike,
    notebooks: Sequence[NotebookSpec] = NOTEBOOKS,
    only: Iterable[str] | None = None,
    device: str | None = None,
    table: bool = True,
) -> list[Job | RunJob]:
    """Expand the profile into jobs: the table grid's runs first, then the notebooks over their grids (the results
    notebook is not among them).

    Parameters
    ----------
    profile : str
    runs_root : path
        ``<out>/<profile>``; run folders, executed notebooks and logs go below it.
    notebooks : sequence of NotebookSpec
    only : iterable of str, optional
        Notebook names (with or without ``.ipynb``) to keep, and ``"table"`` for the table grid's runs.
    device : str, optional
        Passed to training runs and notebooks (default: the profile's).
    table : bool
        Plan the profile's table grid (``False``: notebooks only, e.g. for a folder of one's own notebooks).

    Returns
    -------
    list of RunJob and Job
        The table grid's :class:`RunJob` (one per noise setting and seed, seed by seed), then the notebooks'
        :class:`Job`.
    """
    prof = _profile(profile)
    runs_root = Path(runs_root).resolve()
    wanted = None if only is None else {Path(n).stem for n in only}
    if wanted is not None:
        known = {nb.stem for nb in notebooks} | {RESULTS_NOTEBOOK.stem, TABLE_STAGE}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"unknown notebook(s) {', '.join(unknown)}; the batch has {', '.join(sorted(known))}")
    jobs: list[Job | RunJob] = []
    base = {"profile": prof.name, "runs_root": str(runs_root)}
    device = device or prof.device
    if table and prof.table is not None and (wanted is None or TABLE_STAGE in wanted):
        grid = prof.table
        for seed in grid.seeds:
            for noise in grid.noises:
                cell = f"{grid.dataset}_{noise_tag(noise)}_s{seed}"
                params = {**base, "methods": list(prof.table_methods), "dataset": grid.dataset, "noise": noise,
                          "seed": seed, "device": device}  # fmt: skip
                runs = tuple(run_folder(runs_root, m, grid.dataset, noise, seed) for m in prof.table_methods)
                jobs.append(RunJob(f"{TABLE_STAGE}/{cell}", params, runs, runs_root / "_runs" / f"{cell}.log"))
    for nb in notebooks:
        if wanted is not None and nb.stem not in wanted:
            continue
        extra = prof.notebook_parameters.get(nb.stem, {})
        grid = nb.grid(prof)
        if grid is None:
            jobs.append(Job(nb, nb.stem, {**base, **extra}, (), runs_root / "_notebooks" / nb.filename))
            continue
        for noise in grid.noises:
            for seed in grid.seeds:
                cell = f"{grid.dataset}_{noise_tag(noise)}_s{seed}"
                params = {**base, "dataset": grid.dataset, "noise": noise, "seed": seed, "device": device, **extra}
                runs = tuple(run_folder(runs_root, m, grid.dataset, noise, seed) for m in nb.methods)
                jobs.append(
                    Job(nb, f"{nb.stem}/{cell}", params, runs, runs_root / "_notebooks" / f"{nb.stem}__{cell}.ipynb")
                )
    return jobs


def _declared_parameters(path: Path) -> set[str]:
    """Names assigned in the cell tagged ``parameters`` (only these are passed, so papermill does not warn)."""
    import re

    import nbformat

    nb = nbformat.read(path, as_version=4)
    sources = [c.source for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    return {m.group(1) for src in sources for m in re.finditer(r"^(\w+)\s*(?::[^=]*)?=", src, re.MULTILINE)}


def _execute(
    job: Job,
    notebooks_dir: Path,
    env: dict[str, str],
    timeout: float | None,
    echo: Callable[[str], None] = lambda _: None,
) -> JobOutcome:
    """Run one notebook in its own papermill process, or one table run in its own ``lnlkit run`` process (a crash
    or hang of one job cannot take the batch down)."""
    if isinstance(job, RunJob):
        return _execute_run(job, env, timeout, echo)
    source = notebooks_dir / job.notebook.filename
    echo(f"start {job.name}")
    start = time.perf_counter()
    if not source.exists():
        return JobOutcome(job, "failed", 0.0, f"notebook not found: {source}")
    declared = _declared_parameters(source)
    params = {k: v for k, v in job.parameters.items() if k in declared}
    job.executed.parent.mkdir(parents=True, exist_ok=True)
    job.marker.unlink(missing_ok=True)
    params_file = job.executed.with_suffix(".params.json")
    atomic_write_bytes(params_file, json.dumps(params).encode())
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(source),
        str(job.executed),
        "-f",
        str(params_file),
        "-k",
        "python3",
        "--cwd",
        str(notebooks_dir),
        "--no-progress-bar",
        "--log-level",
        "WARNING",
    ]
    try:
        with open(job.log, "wb") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        return JobOutcome(job, "failed", time.perf_counter() - start, f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - start
    if code < 0:  # killed from outside (a cancelled or preempted SLURM job, a stopped batch): not the notebook's fault
        return JobOutcome(job, "failed", seconds, f"{_KILLED} {-code}")
    if code != 0:
        return JobOutcome(job, "failed", seconds, _error_summary(job.log))
    incomplete = [str(r) for r in job.runs if not is_complete_run(r)]
    if incomplete:
        return JobOutcome(job, "failed", seconds, f"notebook finished but left incomplete run folders: {incomplete}")
    write_json(
        job.marker,
        {
            "notebook": job.notebook.filename,
            "parameters": params,
            "seconds": seconds,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    return JobOutcome(job, "ok", seconds)


def _execute_run(
    job: RunJob, env: dict[str, str], timeout: float | None, echo: Callable[[str], None] = lambda _: None
) -> JobOutcome:
    """Train one table cell with ``lnlkit run --profile --runs-root`` (resuming its run folders)."""
    echo(f"start {job.name}")
    start = time.perf_counter()
    job.log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(job.log, "wb") as log:
            proc = subprocess.run(job.command(), stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return JobOutcome(job, "failed", time.perf_counter() - start, f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - start
    if proc.returncode < 0:
        return JobOutcome(job, "failed", seconds, f"{_KILLED} {-proc.returncode}")
    if proc.returncode != 0 or not job.is_complete():
        return JobOutcome(job, "failed", seconds, _error_summary(job.log))
    return JobOutcome(job, "ok", seconds)


_KILLED = "the job was killed by signal"


def _error_summary(log: Path, lines: int = 6) -> str:
    """The end of a papermill log: the exception papermill reports for the failing cell."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "papermill failed (no log)"
    useful = [t for t in text if t.strip() and not t.startswith("Traceback")]
    return "\n".join(useful[-lines:]) or "papermill failed"


def _job_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    # Parallel jobs share the cores; each kernel gets its slice so they don't oversubscribe the CPU.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["LNLKIT_STATIC_WIDGETS"] = "1"  # batch output: widgets render as static figures
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return env


def _default_jobs(device: str) -> int:
    try:
        import torch

        if device != "cpu" and torch.cuda.is_available():
            return 1  # one GPU: jobs would only queue on it
    except ImportError:
        pass
    return max(1, os.cpu_count() or 1)


def reproduce(
    profile: str = "quick",
    out: str | os.PathLike = "runs",
    results: str | os.PathLike = "results",
    figures: str | os.PathLike = "figures",
    only: Iterable[str] | None = None,
    jobs: int | None = None,
    notebooks_dir: str | os.PathLike | None = None,
    notebooks: Sequence[NotebookSpec] = NOTEBOOKS,
    device: str | None = None,
    run_results: bool = True,
    timeout: float | None = None,
    echo: Callable[[str], None] = print,
    devices: str | Sequence[str] | None = None,
    executor: str = "local",
    slurm: SlurmOptions | None = None,
    check_inputs: bool = True,
    progress: bool = True,
    table: bool = True,
) -> list[JobOutcome]:
    """Train the profile's table grid, execute the notebooks over their grids and regenerate the results tables
    and figures.

    Parameters
    ----------
    profile : {"smoke", "quick", "full", "paper"}
    out : path
        Runs go to ``<out>/<profile>/``; the table runs' logs to ``<out>/<profile>/_runs/``, executed notebooks
        and their logs to ``<out>/<profile>/_notebooks/``.
    results, figures : path
        Where ``99_results.ipynb`` writes ``<profile>.md/.csv/.tex`` and the summary figures.
    only : iterable of str, optional
        Execute only these notebooks, and the table grid if ``"table"`` is among them (the results notebook still
        runs unless ``run_results=False``).
    jobs : int, optional
        Runs or notebooks executed at once (default: the CPU count on CPU, 1 with a GPU); the cores are shared out.
    notebooks_dir : path, optional
        Folder of the notebooks (default: the repository's ``notebooks/``).
    device : str, optional
        Device for training notebooks (default: the profile's).
    timeout : float, optional
        Seconds allowed per notebook or table run.
    echo : callable
        Receives one line per event (start, finish, skip, failure).
    devices : str or sequence of str, optional
        Run the local pool on these devices, one job per device at a time, each job holding its device from start
        to end: ``"cuda:0,cuda:1"``, ``"all"`` (every GPU here); a name given twice runs two jobs on that GPU.
        ``jobs`` then may not be given; the cores are shared out among the devices.
    executor : {"local", "slurm"}
        ``"slurm"``: one SLURM job per grid cell through submitit (``slurm`` sets partition, GPUs, time limit ...);
        jobs lost without a result are resubmitted and resume from their checkpoints.  The results notebook still
        runs here.
    slurm : SlurmOptions, optional
    check_inputs : bool
        Check first that every data set and label file the grid cells need is present (one error listing all).
    progress : bool
        Progress bar over the SLURM jobs.
    table : bool
        Train the profile's table grid before the notebooks (``False``: notebooks only).

    Raises
    ------
    ValueError
        For an unknown executor, a device this machine lacks, SLURM options without submitit or a partition the
        cluster does not have; nothing is started.
    FileNotFoundError
        When data the grid needs is missing (all of it listed); nothing is started.

    Returns
    -------
    list of JobOutcome
        One per job, the results notebook last; a failed job does not stop the others.
    """
    prof = _profile(profile)
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else default_notebooks_dir()
    if not nb_dir.is_dir():
        raise FileNotFoundError(f"notebooks folder not found: {nb_dir} (pass notebooks_dir / --notebooks)")
    runs_root = (Path(out) / prof.name).resolve()
    planned = plan_jobs(prof.name, runs_root, notebooks, only, device, table)
    slots = _check_executor(executor, devices, jobs, slurm)
    n_jobs = len(slots) if slots else max(1, int(jobs)) if jobs is not None else _default_jobs(device or prof.device)
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    env = _job_env(threads)
    # the notebooks run with the notebooks folder as working directory: ./data means the caller's ./data
    env.setdefault("LNLKIT_DATA", str(Path("data").resolve()))

    outcomes: list[JobOutcome] = []
    todo = []
    for job in planned:
        if job.is_complete():
            outcomes.append(JobOutcome(job, "skipped"))
            echo(f"skip  {job.name} (complete)")
        else:
            todo.append(job)
    if check_inputs:
        check_data(todo, env["LNLKIT_DATA"])
    # the table grid first: a notebook whose cell is in it then finds its method's run complete (two processes never
    # train one run folder at once)
    stages = [[j for j in todo if isinstance(j, RunJob)], [j for j in todo if not isinstance(j, RunJob)]]
    for stage, what in zip(stages, ("table run(s)", "notebook run(s)")):
        if not stage:
            continue
        if executor == "slurm":
            echo(f"profile {prof.name}: {len(stage)} {what} to submit to SLURM, {len(planned) - len(todo)} complete")
            _run_slurm(stage, nb_dir, slurm or SlurmOptions(), timeout, runs_root, echo, outcomes, progress)
        elif slots:
            echo(
                f"profile {prof.name}: {len(stage)} {what} to do, {len(planned) - len(todo)} complete; "
                f"one per device on {', '.join(slots)}, {threads} thread(s) each"
            )
            _run_pool(stage, nb_dir, env, timeout, slots, echo, outcomes)
        else:
            echo(
                f"profile {prof.name}: {len(stage)} {what} to do, {len(planned) - len(todo)} complete; "
                f"{n_jobs} at a time, {threads} thread(s) each"
            )
            with ThreadPoolExecutor(max_workers=n_jobs) as pool:
                futures = [pool.submit(_execute, job, nb_dir, env, timeout, echo) for job in stage]
                for done, future in enumerate(as_completed(futures), 1):
                    _report(future.result(), done, len(stage), echo, outcomes)

    if run_results:
        results_job = Job(
            RESULTS_NOTEBOOK,
            RESULTS_NOTEBOOK.stem,
            {
                "profile": prof.name,
                "runs_root": str(runs_root),
                "results_dir": str(Path(results).resolve()),
                "figures_dir": str(Path(figures).resolve()),
            },
            (),
            runs_root / "_notebooks" / RESULTS_NOTEBOOK.filename,
        )
        outcome = _execute(results_job, nb_dir, env, timeout, echo)
        outcomes.append(outcome)
        echo(
            f"{outcome.status:5s} {results_job.name} ({outcome.seconds:.0f} s)"
            + (
                f"\n      executed copy: {results_job.executed}\n      " + outcome.error.replace("\n", "\n      ")
                if outcome.status == "failed"
                else ""
            )
        )
    failed = [o for o in outcomes if o.status == "failed"]
    echo(
        f"done: {sum(o.status == 'ok' for o in outcomes)} ran, {sum(o.status == 'skipped' for o in outcomes)} "
        f"skipped, {len(failed)} failed"
    )
    for o in failed:
        echo(f"FAILED {o.job.name}: see {o.job.executed} (log {o.job.log})")
    return outcomes


# ------------------------------------------------------------------------------------------- aggregation
def main_preset_runs(table, profile: str):
    """The rows of a runs table that use each method's main preset in ``profile`` (the preset its ``MethodPlan``
    names), dropping the ablation and switch variants the notebooks add; methods whose plan leaves the preset to
    the setting (``paper``) or that the profile does not plan keep every row, as does a profile name lnlkit does not
    know.  Used for the summary figures, where
    variants would crowd out the comparison between methods (the tables keep them).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per run with ``method`` and ``preset`` columns (:func:`lnlkit.results_table`).
    profile : str

    Returns
    -------
    pandas.DataFrame
    """
    plans = PROFILES[profile].methods if profile in PROFILES else {}  # a profile of the user's own: keep every row
    main = [plans[m].preset if m in plans else None for m in table["method"]]
    keep = [p is None or preset == p for p, preset in zip(main, table["preset"])]
    return table[keep]


def write_results(runs_root: str | os.PathLike, results_dir: str | os.PathLike, profile: str) -> dict[str, Path]:
    """Write ``<profile>.md``, ``.csv`` and ``.tex`` from the run folders under ``runs_root``: the paper-layout tables
    of :func:`lnlkit.tables.write_tables` (same return value and errors) over the profile's runs (:func:`table_runs`).
    """
    from lnlkit.tables import write_tables

    return write_tables(runs_root, results_dir, profile, runs=table_runs(runs_root, profile))


def table_runs(runs_root: str | os.PathLike, profile: str):
    """The runs of ``profile``'s paper tables under ``runs_root`` (:func:`lnlkit.tables.paper_runs`): complete,
    no variant folders, each method on the preset the profile plans for it and, when the profile has a table grid,
    only the table's methods.  A profile name lnlkit does not know keeps every main run.

    Returns
    -------
    pandas.DataFrame
    """
    from lnlkit.tables import paper_runs

    prof = PROFILES.get(profile)
    if prof is None:
        return paper_runs(runs_root)
    presets = {m: plan.preset for m, plan in prof.methods.items()}
    return paper_runs(runs_root, presets, prof.table_methods if prof.table is not None else None)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically (PNG by the file's suffix)."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


# ------------------------------------------------------------------------------------------- executors
# `reproduce` runs its jobs either here (a pool of CPU workers, or one worker per named GPU: `devices`) or as one
# SLURM job per grid cell through submitit (`executor="slurm"`).  Everything is checked before the first job starts.
EXECUTORS = ("local", "slurm")

# Test seam: with LNLKIT_SIMULATED_GPUS=N the pool believes N GPUs named cuda:0..cuda:N-1 exist and the job holding
# one trains on the CPU instead (CUDA_VISIBLE_DEVICES is still set per job), so the multi-GPU pool runs on any machine.
_SIMULATED_GPUS_ENV = "LNLKIT_SIMULATED_GPUS"


def _gpu_count() -> tuple[int, bool]:
    """(number of GPUs, simulated?)."""
    simulated = os.environ.get(_SIMULATED_GPUS_ENV)
    if simulated:
        return int(simulated), True
    try:
        import torch

        return (torch.cuda.device_count() if torch.cuda.is_available() else 0), False
    except ImportError:
        return 0, False


def parse_devices(spec: str | Sequence[str]) -> list[str]:
    """The device slots of a local pool: ``"all"``, ``"cuda:0,cuda:1"`` (a name twice gives that GPU two jobs) or
    ``"cpu,cpu"``.

    Parameters
    ----------
    spec : str or sequence of str

    Returns
    -------
    list of str
        One entry per concurrent job, e.g. ``["cuda:0", "cuda:1"]``.

    Raises
    ------
    ValueError
        For an unknown name or a GPU this machine does not have (the message lists the ones it has).
    """
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
    if not names:
        raise ValueError("--devices is empty; give e.g. cuda:0,cuda:1 or all")
    count, _ = _gpu_count()
    have = [f"cuda:{i}" for i in range(count)]
    if names == ["all"]:
        if not have:
            raise ValueError("--devices all: this machine has no CUDA GPU (torch.cuda.device_count() == 0)")
        return have
    slots = []
    for name in names:
        if name == "cuda":
            name = "cuda:0"
        if name == "cpu":
            slots.append(name)
            continue
        if not name.startswith("cuda:") or not name[5:].isdigit():
            raise ValueError(f"unknown device {name!r} in --devices; use cuda:N, cpu or all")
        if name not in have:
            raise ValueError(
                f"--devices names {name}, but this machine has "
                + (f"{len(have)} GPU(s): {', '.join(have)}" if have else "no CUDA GPU")
            )
        slots.append(name)
    return slots


def _slot_env(env: dict[str, str], slot: str) -> tuple[dict[str, str], str]:
    """The environment and the notebook's ``device`` for a job holding ``slot``: the job sees only its GPU (as
    ``cuda``), so nothing it allocates lands on another job's device."""
    env = dict(env)
    env["LNLKIT_DEVICE_SLOT"] = slot
    if slot == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env, "cpu"
    env["CUDA_VISIBLE_DEVICES"] = slot.split(":")[1]
    _, simulated = _gpu_count()
    return env, "cpu" if simulated else "cuda"


def _run_pool(
    todo: Sequence[Job],
    nb_dir: Path,
    env: dict[str, str],
    timeout: float | None,
    slots: Sequence[str],
    echo: Callable[[str], None],
    outcomes: list[JobOutcome],
) -> None:
    """Run ``todo`` on a pool of device slots: each job holds one slot from start to end (a queue of free slots)."""
    import queue
    from dataclasses import replace

    free: "queue.Queue[str]" = queue.Queue()
    for slot in slots:
        free.put(slot)

    def run_on_slot(job: Job) -> JobOutcome:
        slot = free.get()
        try:
            slot_env, device = _slot_env(env, slot)
            if "device" in job.parameters:
                job = replace(job, parameters={**job.parameters, "device": device})
            echo(f"      {job.name} holds {slot}")
            return _execute(job, nb_dir, slot_env, timeout, echo)
        finally:
            free.put(slot)

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        futures = [pool.submit(run_on_slot, job) for job in todo]
        for done, future in enumerate(as_completed(futures), 1):
            _report(future.result(), done, len(todo), echo, outcomes)


def _report(
    outcome: JobOutcome, done: int, total: int, echo: Callable[[str], None], outcomes: list[JobOutcome]
) -> None:
    outcomes.append(outcome)
    echo(
        f"{outcome.status:5s} {outcome.job.name} ({outcome.seconds:.0f} s) [{done}/{total}]"
        + (
            f"\n      executed copy: {outcome.job.executed}\n      " + outcome.error.replace("\n", "\n      ")
            if outcome.status == "failed"
            else ""
        )
    )


def _check_executor(
    executor: str, devices: str | Sequence[str] | None, jobs: int | None, slurm: SlurmOptions | None
) -> list[str]:
    """Validate the executor choice before anything runs; the device slots of a local pool (empty: CPU workers)."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if executor == "slurm":
        if devices is not None:
            raise ValueError("--devices is for the local executor; with --executor slurm use --gpus-per-job")
        check_slurm(slurm or SlurmOptions())
        return []
    if slurm is not None:
        raise ValueError("SLURM options (--partition, --gpus-per-job, --time, --slurm) need --executor slurm")
    if devices is None:
        return []
    if jobs is not None:
        raise ValueError(
            "--jobs counts CPU workers; with --devices every device runs one job at a time "
            "(name a GPU twice, e.g. cuda:0,cuda:0, for two jobs on it)"
        )
    return parse_devices(devices)


# --- data check
def check_data(jobs: Sequence[Job], data_root: str | os.PathLike | None = None) -> None:
    """Load every data set and noise setting the jobs need, before any job starts.

    Raises
    ------
    FileNotFoundError
        One message listing every missing data set and label file (and the jobs that need each).
    """
    from lnlkit.data import load_dataset

    cells: dict[str, set[str]] = {}
    for job in jobs:
        if "dataset" in job.parameters:
            cells.setdefault(job.parameters["dataset"], set()).add(job.parameters["noise"])
    missing: dict[str, list[str]] = {}  # first line of the error -> what needs it
    for dataset, noises in sorted(cells.items()):
        try:
            data = load_dataset(dataset, data_root)
        except (FileNotFoundError, OSError) as err:
            missing.setdefault(_first_line(err), []).append(f"data set {dataset}")
            continue
        seed = 0
        for noise in sorted(noises):
            try:
                data.with_noise(noise, seed=seed)
            except FileNotFoundError as err:
                missing.setdefault(_first_line(err), []).append(f"{dataset} with {noise}")
    if missing:
        items = "; ".join(f"{msg} (needed by {', '.join(who)})" for msg, who in missing.items())
        raise FileNotFoundError(f"{len(missing)} input(s) the profile needs are missing, nothing was started: {items}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- SLURM through submitit
@dataclass(frozen=True)
class SlurmOptions:
    """How ``reproduce(executor="slurm")`` asks SLURM for each grid cell's job.

    Attributes
    ----------
    partition : str, optional
        ``--partition`` (default: the cluster's default partition).
    gpus_per_job : int
        GPUs per job (``--gpus-per-node``); 0 for CPU jobs.
    time_min : int
        Wall-clock limit per job, minutes.  At the limit submitit checkpoints and requeues the job, which resumes
        its runs from their last checkpoint.
    cpus_per_job : int
        ``--cpus-per-task``; the notebook's kernel gets as many threads.
    extra : dict
        Further sbatch options, e.g. ``{"account": "lab", "qos": "high", "mem": "32G"}``.
    retries : int
        How often a job that ended without a result (cancelled, preempted, node failure, out of memory) is
        resubmitted; it resumes from its checkpoint.
    poll_s : float
        Seconds between queue polls.
    folder : path, optional
        Where submitit keeps its scripts and logs (default ``<out>/<profile>/_slurm``).
    """

    partition: str | None = None
    gpus_per_job: int = 1
    time_min: int = 24 * 60
    cpus_per_job: int = 4
    extra: dict[str, str] = field(default_factory=dict)
    retries: int = 3
    poll_s: float = 10.0
    folder: str | None = None


def parse_slurm_options(pairs: Iterable[str]) -> dict[str, str]:
    """``["account=lab", "qos=high"]`` -> ``{"account": "lab", "qos": "high"}`` (sbatch option names, no dashes)."""
    extra = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--slurm takes KEY=VALUE (an sbatch option), got {pair!r}")
        extra[key] = value.strip()
    return extra


def _require_submitit():
    try:
        import submitit
    except ImportError:
        raise ValueError("--executor slurm needs submitit: pip install 'lnlkit[cluster]'") from None
    return submitit


def check_slurm(options: SlurmOptions) -> None:
    """Fail before submitting when submitit or SLURM's commands are missing or the partition does not exist.

    Raises
    ------
    ValueError
    """
    import shutil

    _require_submitit()
    for command in ("sbatch", "squeue", "sinfo", "scancel"):
        if shutil.which(command) is None:
            raise ValueError(f"--executor slurm: {command} is not on PATH (run on a SLURM login node)")
    if options.time_min < 1:
        raise ValueError(f"--time must be at least 1 minute, got {options.time_min}")
    if options.gpus_per_job < 0 or options.cpus_per_job < 1 or options.retries < 0:
        raise ValueError("--gpus-per-job and --retries must be >= 0 and --cpus-per-job >= 1")
    try:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ValueError("--executor slurm: sinfo did not answer within 60 s; is slurmctld reachable?") from None
    if listed.returncode != 0:
        raise ValueError(f"--executor slurm: sinfo failed: {_first_line(RuntimeError(listed.stderr or 'no output'))}")
    partitions = [p.strip().rstrip("*") for p in listed.stdout.split()]
    if options.partition is not None and options.partition not in partitions:
        raise ValueError(
            f"partition {options.partition!r} not on this cluster; sinfo lists {', '.join(partitions) or 'none'}"
        )


class _CellTask:
    """What a SLURM job runs: one notebook execution.  submitit calls ``checkpoint`` when the job is preempted or
    reaches its time limit and requeues the same task, which resumes its runs (the notebooks fit with resume=True)."""

    def __init__(self, job: Job, notebooks_dir: str, threads: int, timeout: float | None, data_root: str | None):
        self.job, self.notebooks_dir, self.threads, self.timeout = job, notebooks_dir, threads, timeout
        self.data_root = data_root

    def __call__(self) -> JobOutcome:
        env = _job_env(self.threads)
        if self.data_root is not None:
            env.setdefault("LNLKIT_DATA", self.data_root)
        return _execute(self.job, Path(self.notebooks_dir), env, self.timeout)

    def checkpoint(self, *args: Any, **kwargs: Any):
        from submitit.core.utils import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def _squeue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """SLURM state of each job still known to the controller (``None``: squeue did not answer)."""
    if not job_ids:
        return {}
    try:
        done = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i %T", "-j", ",".join(job_ids)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        return None
    return dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())


# states in which a job is gone for good without a result: resubmit (it resumes from its checkpoint)
_SLURM_ENDED = {
    "CANCELLED",
    "FAILED",
    "NODE_FAIL",
    "PREEMPTED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "COMPLETED",
    "SPECIAL_EXIT",
}


def _run_slurm(
    todo: Sequence[Job],
    nb_dir: Path,
    options: SlurmOptions,
    timeout: float | None,
    runs_root: Path,
    echo: Callable[[str], None],
    outcomes: list[JobOutcome],
    progress: bool = True,
) -> None:
    """Submit one SLURM job per grid cell, resubmit those lost without a result, collect the outcomes."""
    submitit = _require_submitit()
    from tqdm.auto import tqdm

    folder = Path(options.folder) if options.folder is not None else runs_root / "_notebooks" / "_slurm"
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster="slurm")
    params: dict[str, Any] = {
        "timeout_min": int(options.time_min),
        "cpus_per_task": int(options.cpus_per_job),
        "tasks_per_node": 1,
        "nodes": 1,
        "slurm_signal_delay_s": 60,
        "slurm_additional_parameters": dict(options.extra),
    }
    if options.partition is not None:
        params["slurm_partition"] = options.partition
    if options.gpus_per_job:
        params["gpus_per_node"] = int(options.gpus_per_job)
    executor.update_parameters(**params)
    data_root = os.environ.get("LNLKIT_DATA") or str(Path("data").resolve())

    def submit(job: Job):
        executor.update_parameters(name=f"lnlkit-{job.name.replace('/', '-')}")
        task = _CellTask(job, str(nb_dir), int(options.cpus_per_job), timeout, data_root)
        handle = executor.submit(task)
        echo(f"submit {job.name}: SLURM job {handle.job_id}, log {handle.paths.stdout} (notebook log {job.log})")
        return handle

    running = {}
    attempts: dict[str, int] = {}
    lost: dict[str, int] = {}

    def _resubmit_or_fail(name: str, job: Job, handle: Any, why: str) -> JobOutcome | None:
        """Resubmit a job lost to the cluster (it resumes from its checkpoint), up to ``options.retries`` times."""
        if attempts[name] < options.retries:
            attempts[name] += 1
            echo(
                f"lost  {name}: SLURM job {handle.job_id} {why}; resubmitting ({attempts[name]}/{options.retries}), "
                "it resumes from its checkpoint"
            )
            running[name] = (job, submit(job))
            return None
        return JobOutcome(
            job,
            "failed",
            0.0,
            f"SLURM job {handle.job_id} {why}, {options.retries + 1} time(s); log {handle.paths.stdout}",
        )

    try:
        for job in todo:
            running[job.name] = (job, submit(job))
            attempts[job.name] = 0
        bar = tqdm(total=len(todo), desc="SLURM jobs", unit="job", disable=not progress)
        done = 0
        while running:
            time.sleep(options.poll_s)
            states = _squeue_states([h.job_id for _, h in running.values()])
            for name, (job, handle) in list(running.items()):
                outcome = None
                if handle.paths.result_pickle.exists():
                    try:
                        outcome = handle.result()
                    except Exception as err:  # submitit's own failure (e.g. the task raised): one line per job
                        outcome = JobOutcome(job, "failed", 0.0, f"SLURM job {handle.job_id}: {_first_line(err)}")
                    if outcome.status == "failed" and outcome.error.startswith(_KILLED):
                        # SLURM signalled the job (scancel, preemption) and its task answered before the final kill
                        outcome = _resubmit_or_fail(name, job, handle, "was killed by a signal")
                elif states is not None and states.get(handle.job_id, "GONE").split()[0] in _SLURM_ENDED | {"GONE"}:
                    state = states.get(handle.job_id, "GONE")
                    # seen ended twice in a row: the result file of a job that just finished may lag on NFS
                    lost[name] = lost.get(name, 0) + 1
                    if lost[name] < 2:
                        continue
                    lost.pop(name)
                    # a job lost without a result: cancelled, preempted, node failure ...
                    outcome = _resubmit_or_fail(name, job, handle, f"ended {state} without a result")
                if outcome is not None:
                    running.pop(name)
                    done += 1
                    bar.update(1)
                    _report(outcome, done, len(todo), echo, outcomes)
        bar.close()
    except KeyboardInterrupt:
        ids = [h.job_id for _, h in running.values()]
        if ids:
            subprocess.run(["scancel", *ids], timeout=60, check=False)
            echo(f"interrupted: cancelled SLURM job(s) {', '.join(ids)}; rerun to continue from the checkpoints")
        raise
