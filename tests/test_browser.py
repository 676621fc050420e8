"""00_quickstart.ipynb in a real JupyterLab, driven by headless Chromium through Playwright.

Skipped when Chromium or Playwright is missing (``.ci/run`` installs Debian's ``chromium``; Playwright's own browser
download cannot work offline, so the system browser is used).
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb"
CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
        if p and os.path.exists(p)
    ),
    None,
)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)"),
    pytest.mark.slow,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_copy(folder: Path) -> Path:
    """The committed notebook with its parameters cell set to the smoke profile and a private runs folder."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source = params.source.replace('profile = "quick"', 'profile = "smoke"').replace(
        'runs_root = "../runs/lab"', f"runs_root = {str(folder / 'runs')!r}"
    )
    assert 'profile = "smoke"' in params.source and str(folder / "runs") in params.source
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def _wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on localhost with a fresh token, rooted at ``tmp_path``; shut down afterwards."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "LNLKIT_STATIC_WIDGETS"}  # the real front-end is present
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / ".jupyter")  # no user settings leak in, no runtime files leak out
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / ".jupyter-runtime")
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--ServerApp.open_browser=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *as_root,
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", proc)
        yield f"http://127.0.0.1:{port}", token
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass  # already gone
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            log.close()


def _wait_until_idle(page, timeout_ms: int) -> None:
    """Every cell has run (no ``[*]`` prompt left) and the kernel is idle."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-InputArea-prompt')].every(p => !p.textContent.includes('*'))",
        timeout=timeout_ms,
    )
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms)


def _accept_dialog(page, wait_ms: int) -> None:
    """Accept JupyterLab's modal dialog if one shows up (e.g. "Select Kernel" when the kernel starts slowly)."""
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        accept.wait_for(state="visible", timeout=wait_ms)
    except Exception:  # no dialog: nothing to do
        return
    accept.click()


def _run_all_cells(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    _accept_dialog(page, 5_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)  # kernel up
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    _accept_dialog(page, 5_000)
    # the last cell displays the run explorer: its epoch slider must render as a live widget
    slider = page.wait_for_selector(".jp-OutputArea-output .widget-slider", timeout=180_000)
    assert slider.is_visible()
    _wait_until_idle(page, 120_000)
    page.keyboard.press("Control+s")
    page.wait_for_selector(".jp-mod-dirty", state="detached", timeout=30_000)  # saved


def test_quickstart_runs_in_jupyterlab_with_widgets(lab, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, token = lab
    notebook = _smoke_copy(tmp_path)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                _run_all_cells(page, f"{base}/lab/tree/{notebook.name}?token={token}")
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)  # kept for the post-mortem
                raise
            page.screenshot(path=str(tmp_path / "quickstart.png"), full_page=True)
        finally:
            browser.close()

    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
    saved = nbformat.read(notebook, as_version=4)
    code = [c for c in saved.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == [], [f"{e.ename}: {e.evalue}" for e in errors]
    assert all(c.execution_count is not None for c in code), "not every cell ran"
    widget_outputs = [o for o in code[-1].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_outputs, "the run explorer did not display as a widget"
