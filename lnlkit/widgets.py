"""ipywidgets explorers: an epoch slider over a run folder, and a noise-kind/rate explorer over a data set.

Every explorer draws with a function of :mod:`lnlkit.plots` and works in two modes:

* **interactive** — widgets (sliders, drop-downs) redraw the figure into an ``ipywidgets.Output``.  Displaying the
  explorer yields the widget view *and* a PNG of the current figure plus a text line, so a front-end with widget
  support shows the live widget and anything else (a papermill output opened without a kernel, nbconvert) shows
  the picture.
* **static** — no widget is built; displaying the explorer yields only the PNG and the text.  It is taken when
  ``static=True``, or when ``static=None`` and :func:`widget_frontend_available` is False (the environment variable
  ``LNLKIT_STATIC_WIDGETS`` is ``1``/``true``/``yes``, ipywidgets is not installed, or the code does not run in an
  IPython kernel, e.g. a plain script or pytest).

ipywidgets is imported only when an interactive explorer is built, so ``import lnlkit.widgets`` works without it.

>>> from lnlkit.widgets import explore_run
>>> explore_run("runs/ce-sym40-s0")            # in a notebook: a slider over the recorded epochs
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any, Sequence

from lnlkit.noise import NOISE_KINDS
from lnlkit.plots import plot_epoch_snapshot, plot_noise_overview
from lnlkit.runs import RunResult, load_run

__all__ = [
    "widget_frontend_available",
    "RunExplorer",
    "explore_run",
    "NoiseExplorer",
    "explore_noise",
    "default_noise_kinds",
    "noise_spec",
    "progress_bar",
]

STATIC_ENV = "LNLKIT_STATIC_WIDGETS"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def widget_frontend_available() -> bool:
    """Whether live widgets can be shown: the default of every explorer's ``static=None``.

    Returns
    -------
    bool
        False when the environment variable ``LNLKIT_STATIC_WIDGETS`` is ``1``, ``true`` or ``yes`` (any case),
        when ipywidgets cannot be imported, or when the code does not run inside an IPython kernel (no
        ``get_ipython()``, or a shell without a ``kernel``, such as a terminal IPython); True otherwise.
    """
    if os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as exc:
        raise ImportError(
            "interactive explorers need ipywidgets >= 8: pip install 'lnlkit[notebooks]' "
            "(or pass static=True for a static figure)"
        ) from exc
    return ipywidgets


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # the plots already ran tight_layout
    return buf.getvalue()


class _Explorer:
    """What both explorers share: the current figure, its PNG, the output area and the display contract."""

    static: bool
    figure: Any = None
    output: Any = None
    box: Any = None
    error: str | None = None
    _png: bytes | None = None

    def _init_mode(self, static: bool | None) -> None:
        self.static = (not widget_frontend_available()) if static is None else bool(static)
        if not self.static:
            _ipywidgets()  # fail early and clearly when ipywidgets is missing

    def _render(self, make_figure) -> Any:
        plt = _pyplot()
        # ioff: under ipympl a new figure would otherwise display itself beside the explorer
        with plt.ioff():
            fig = make_figure()
        old, self.figure = self.figure, fig
        if old is not None and old is not fig:
            plt.close(old)
        try:
            self._png = _png(fig)
        finally:
            # The PNG is what is shown; closing takes the figure out of pyplot so an inline backend does not show
            # it a second time and redraws do not pile up open figures.  The Figure object stays usable.
            plt.close(fig)
        self.error = None
        if self.output is not None:
            self.output.outputs = (
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"image/png": base64.b64encode(self._png).decode("ascii"), "text/plain": repr(fig)},
                },
            )
        return fig

    def _show_error(self, message: str) -> None:
        if self.figure is not None:
            _pyplot().close(self.figure)
        self.figure, self._png, self.error = None, None, message
        if self.output is not None:
            self.output.outputs = ({"output_type": "display_data", "metadata": {}, "data": {"text/plain": message}},)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Widget view (interactive mode only) + ``image/png`` of the current figure + ``text/plain``."""
        bundle: dict[str, Any] = {}
        if self.box is not None:
            bundle.update(self.box._repr_mimebundle_(**kwargs))
        if self._png is not None:
            bundle["image/png"] = base64.b64encode(self._png).decode("ascii")
        bundle["text/plain"] = repr(self)
        if include:
            bundle = {k: v for k, v in bundle.items() if k in include}
        if exclude:
            bundle = {k: v for k, v in bundle.items() if k not in exclude}
        return bundle


# ---------------------------------------------------------------------------------------------- runs
class RunExplorer(_Explorer):
    """An epoch slider over a run folder, redrawing :func:`lnlkit.plots.plot_epoch_snapshot`.

    Parameters
    ----------
    run : RunResult or path
        A run, or a run folder (read with :func:`lnlkit.load_run`); it must have recorded per-sample losses.
    static : bool, optional
        True: build no widget; displaying the explorer shows a PNG of the snapshot at ``epoch`` and a text line.
        False: build the slider (needs ipywidgets).  None (default): static exactly when
        :func:`widget_frontend_available` is False (``LNLKIT_STATIC_WIDGETS=1``, no ipywidgets, or no kernel).
    epoch : int, optional
        Recorded epoch shown first (default: the last recorded one).
    bins : int
        Histogram bins of the loss distribution.

    Attributes
    ----------
    run : RunResult
    epochs : list of int
        The recorded signal epochs.
    epoch : int
        The epoch shown.
    figure : matplotlib.figure.Figure
        The figure shown (already closed in pyplot; ``figure.savefig`` still works).
    slider : ipywidgets.SelectionSlider or None
        Its options are the recorded epochs; setting ``slider.value`` redraws.  None in static mode.
    output : ipywidgets.Output or None
        Holds the PNG of the current figure (or an error text).  None in static mode.
    box : ipywidgets.VBox or None
        Slider above output: the widget view.  None in static mode.

    Raises
    ------
    ValueError
        When the run recorded no per-sample losses, or ``epoch`` is not a recorded epoch.
    """

    def __init__(
        self, run: RunResult | str | os.PathLike, static: bool | None = None, epoch: int | None = None, bins: int = 40
    ):
        self.run = run if isinstance(run, RunResult) else load_run(Path(run))
        sig = self.run.signals
        if "loss" not in sig or len(sig.get("epoch", ())) == 0:
            raise ValueError(f"run {self.run.path} recorded no per-sample losses, so there is no epoch to explore")
        self.epochs = [int(e) for e in sig["epoch"]]
        self.bins = bins
        self.epoch: int | None = None
        self.slider = None
        self._init_mode(static)
        start = self.epochs[-1] if epoch is None else self._check(epoch)
        if not self.static:
            widgets = _ipywidgets()
            self.slider = widgets.SelectionSlider(
                options=[(str(e), e) for e in self.epochs],
                value=start,
                description="epoch",
                continuous_update=False,
                layout=widgets.Layout(width="70%"),
            )
            self.output = widgets.Output()
            self.box = widgets.VBox([self.slider, self.output])
            self.slider.observe(self._on_slider, names="value")
        self._draw(start)

    def _check(self, epoch: Any) -> int:
        if not hasattr(epoch, "__index__") or int(epoch) not in self.epochs:  # ints and NumPy integers only
            raise ValueError(f"epoch {epoch!r} has no recorded signals; recorded epochs: {self.epochs}")
        return int(epoch)

    def _draw(self, epoch: int) -> None:
        self._render(lambda: plot_epoch_snapshot(self.run, epoch, bins=self.bins))
        self.epoch = epoch

    def _on_slider(self, change: dict) -> None:
        # An exception in a widget callback would vanish into the kernel log: show it instead.
        try:
            self._draw(int(change["new"]))
        except Exception as exc:  # noqa: BLE001
            self._show_error(f"cannot draw epoch {change['new']}: {type(exc).__name__}: {exc}")

    def show_epoch(self, epoch: int) -> None:
        """Show a recorded epoch (moves the slider in interactive mode).

        Raises
        ------
        ValueError
            When ``epoch`` is not a recorded epoch (the message lists them).
        """
        epoch = self._check(epoch)
        if self.slider is not None and self.slider.value != epoch:
            self.slider.value = epoch  # the observer redraws
        else:
            self._draw(epoch)

    def __repr__(self) -> str:
        cfg = self.run.config
        state = f"epoch {self.epoch}" if self.error is None else f"error: {self.error}"
        return (
            f"RunExplorer({cfg.get('method')} on {cfg.get('dataset')}, {cfg.get('noise')}, seed {cfg.get('seed')}"
            f": {state}; recorded epochs {self.epochs[0]}..{self.epochs[-1]}; {self.run.path})"
        )


def explore_run(run: RunResult | str | os.PathLike, static: bool | None = None, **kwargs: Any) -> RunExplorer:
    """:class:`RunExplorer` over ``run`` (static when ``static=True``, or when ``static=None`` and no widget
    front-end is available; see :func:`widget_frontend_available`).  ``kwargs`` go to :class:`RunExplorer`."""
    return RunExplorer(run, static=static, **kwargs)


# ---------------------------------------------------------------------------------------------- noise
OPENSET_TEMPLATE = "openset:0.2+symmetric:{rate}"


def default_noise_kinds(num_classes: int) -> list[str]:
    """The kinds :class:`NoiseExplorer` offers by default for a data set of ``num_classes`` classes.

    ``asym-cifar10`` (a map between the ten CIFAR-10 classes) only when ``num_classes == 10``.
    """
    kinds = ["symmetric", "symmetric-inclusive", "pairflip"]
    if num_classes == 10:
        kinds.append("asym-cifar10")
    return kinds + ["instance", "openset"]


def noise_spec(kind: str, rate: float) -> str:
    """The spec string of ``kind`` at ``rate``: ``"pairflip", 0.4`` -> ``"pairflip:0.4"``.

    ``kind`` may be a template with ``{rate}`` (``"openset:0.3+pairflip:{rate}"``); plain ``"openset"`` means
    ``"openset:0.2+symmetric:{rate}"``.
    """
    r = f"{round(float(rate), 6):g}"  # slider floats such as 0.30000000000000004 -> "0.3"
    if "{rate}" in kind:
        return kind.replace("{rate}", r)
    if kind == "openset":
        return OPENSET_TEMPLATE.replace("{rate}", r)
    return f"{kind}:{r}"


class NoiseExplorer(_Explorer):
    """Pick a noise kind and rate; see the realised transition matrix and the first flipped training samples.

    Draws :func:`lnlkit.plots.plot_noise_overview` of ``dataset.with_noise(noise_spec(kind, rate), seed)`` and a
    text line with the realised against the nominal rate.  A kind that does not apply to the data set (one that
    needs coarse labels, a CIFAR-N file, ...) shows its error message in the output area instead of raising.

    Parameters
    ----------
    dataset : Dataset or NoisyDataset
        A data set whose clean training labels are known (a NoisyDataset stands for its clean data set).
    kinds : sequence of str, optional
        Entries of the drop-down: kinds of :data:`lnlkit.noise.NOISE_KINDS` or ``{rate}`` templates (see
        :func:`noise_spec`).  Default: :func:`default_noise_kinds`.
    seed : int
        Seed of the noise.
    static : bool, optional
        True: build no widget; displaying the explorer shows a PNG of the first kind at ``rate`` (or whatever
        :meth:`show` drew last) and a text line.  False: build the widgets (needs ipywidgets).  None (default):
        static exactly when :func:`widget_frontend_available` is False.
    n_examples : int
        Flipped samples shown: the first ones in index order, so the choice is deterministic.
    rate : float
        Starting nominal rate, in [0, 0.9] (default 0.4).

    Attributes
    ----------
    kind : ipywidgets.Dropdown or None
        Noise kind; changing ``kind.value`` redraws.  None in static mode.
    rate : ipywidgets.FloatSlider or None
        Nominal rate, 0 to 0.9 in steps of 0.05 (default 0.4); changing ``rate.value`` redraws.  None in static mode.
    text : ipywidgets.HTML or None
        The realised-rate line (or the error).  None in static mode.
    output, box : ipywidgets.Output, ipywidgets.VBox, or None
        As in :class:`RunExplorer`.
    spec : str
        The spec shown.
    noisy : NoisyDataset or None
        The noisy data set drawn (None after an error).
    message : str
        The realised-rate line, or the error.
    error : str or None
        The error of the last draw, if it failed.
    figure : matplotlib.figure.Figure or None
        The figure shown (None after an error).
    """

    def __init__(
        self,
        dataset: Any,
        kinds: Sequence[str] | None = None,
        seed: int = 0,
        static: bool | None = None,
        n_examples: int = 16,
        rate: float = 0.4,
    ):
        base = getattr(dataset, "dataset", dataset)
        if not getattr(base, "clean_train_known", True):
            raise ValueError(
                f"{base.name} carries real label noise with unknown clean labels: no synthetic noise "
                "can be injected to explore"
            )
        self.dataset = base
        self.kinds = list(default_noise_kinds(base.num_classes) if kinds is None else kinds)
        if not self.kinds:
            raise ValueError("kinds is empty: give at least one noise kind")
        for k in self.kinds:
            head = k.split(":", 1)[0].strip().lower()
            if head not in NOISE_KINDS:
                raise ValueError(f"unknown noise kind {k!r}; valid kinds: {', '.join(NOISE_KINDS)}")
        self.seed = seed
        self.n_examples = n_examples
        self.spec = ""
        self.noisy = None
        self.message = ""
        self.kind = self.rate = self.text = None
        self._holding = False
        self._init_mode(static)
        if not 0.0 <= rate <= 0.9:
            raise ValueError(f"rate must be in [0, 0.9], got {rate}")
        start_kind, start_rate = self.kinds[0], float(rate)
        if not self.static:
            widgets = _ipywidgets()
            self.kind = widgets.Dropdown(options=self.kinds, value=start_kind, description="noise")
            self.rate = widgets.FloatSlider(
                value=start_rate,
                min=0.0,
                max=0.9,
                step=0.05,
                description="rate",
                continuous_update=False,
                readout_format=".2f",
            )
            self.text = widgets.HTML()
            self.output = widgets.Output()
            self.box = widgets.VBox([widgets.HBox([self.kind, self.rate]), self.text, self.output])
            self.kind.observe(self._on_change, names="value")
            self.rate.observe(self._on_change, names="value")
        self._draw(start_kind, start_rate)

    def _draw(self, kind: str, rate: float) -> None:
        self.spec = noise_spec(kind, rate)
        try:
            noisy = self.dataset.with_noise(self.spec, seed=self.seed)
            self._render(lambda: plot_noise_overview(noisy, n_examples=self.n_examples))
        except Exception as exc:  # noqa: BLE001 -- any injector's complaint is shown, never raised in a callback
            self.noisy = None
            self.message = f"{self.spec} cannot be drawn on {self.dataset.name}: {type(exc).__name__}: {exc}"
            self._show_error(self.message)
            if self.text is not None:
                self.text.value = f"<span style='color:#b00'>{html.escape(self.message)}</span>"
            return
        self.noisy = noisy
        noise = noisy.noise
        nominal = float(rate) if noise.nominal_rate is None else noise.nominal_rate
        wrong = int(noise.is_noisy.sum()) if noise.is_noisy is not None else 0
        self.message = (
            f"{self.spec}: realised rate {noise.realized_rate:.3f} vs nominal {nominal:.3f} "
            f"({wrong} of {len(noise.labels)} labels wrong, seed {self.seed})"
        )
        if self.text is not None:
            self.text.value = html.escape(self.message)

    def _on_change(self, change: dict) -> None:
        if not self._holding:
            self._draw(self.kind.value, self.rate.value)

    def show(self, kind: str, rate: float) -> None:
        """Draw ``kind`` at ``rate`` (and move the widgets there in interactive mode).

        Raises
        ------
        ValueError
            When ``kind`` is not one of :attr:`kinds` or ``rate`` is outside [0, 0.9] (the slider's range).  A kind
            that fails on this data set does not raise: its error is shown.
        """
        if kind not in self.kinds:
            raise ValueError(f"kind {kind!r} is not offered; offered kinds: {self.kinds}")
        if not 0.0 <= float(rate) <= 0.9:
            raise ValueError(f"rate must be in [0, 0.9], got {rate}")
        if self.kind is not None:
            self._holding = True  # one redraw for both changes
            try:
                self.kind.value = kind
                self.rate.value = float(rate)
            finally:
                self._holding = False
        self._draw(kind, float(rate))

    def __repr__(self) -> str:
        return f"NoiseExplorer({self.dataset.name}: {self.message})"


def explore_noise(dataset: Any, **kwargs: Any) -> NoiseExplorer:
    """:class:`NoiseExplorer` over ``dataset`` (static when ``static=True``, or when ``static=None`` and no widget
    front-end is available; see :func:`widget_frontend_available`).  ``kwargs`` go to :class:`NoiseExplorer`."""
    return NoiseExplorer(dataset, **kwargs)


def progress_bar(total: int, initial: int = 0, desc: str = ""):
    """A progress bar factory for ``Method.fit(progress=progress_bar)`` in a notebook: tqdm's widget bar where a
    front-end renders widgets (:func:`widget_frontend_available`), its text bar elsewhere (scripts, papermill output).

    Parameters
    ----------
    total : int
        Epochs of the run.
    initial : int
        The first epoch (a resumed run starts part-way).
    desc : str
        The label, the method's name.
    """
    if widget_frontend_available():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=False, mininterval=1.0)
    from lnlkit.train.driver import text_progress_bar

    return text_progress_bar(total, initial, desc)
