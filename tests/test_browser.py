"""JupyterLab in a real browser, as a researcher uses it: every numbered notebook opened in headless Chromium,
run with menu Run > Run All Cells on the tiny model (params/smoke.yaml), checked for errors and for its
table or figure, and saved with a screenshot in the test's temporary folder (pytest prints it:
.../browser_check0/{notebooks,screenshots}; the run's data and models are there too).

Needs Debian's Chromium (/usr/bin/chromium), Playwright's Python package and JupyterLab (`make browser`
installs all three; Playwright's own browser download is never used). Without them the test skips and
says what is missing. The server is this environment's JupyterLab (sys.executable), so the notebooks'
`python3` kernel is this environment's Python, the one that has grasp_lib.
"""

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grasp_lib.paths import REPO_ROOT
from grasp_lib.runner import NOTEBOOKS

CHROMIUM = "/usr/bin/chromium"
# No sandbox as root; no background connections (this network refuses them, many at a time).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# What each notebook must show once run: a pandas table and/or a figure
RENDERED = {"01_data": ("table", "figure"), "02_prompts": ("table",), "03_sft": ("figure",), "04_grpo": ("table",),
            "05_evaluate": ("table",), "06_figures": ("figure",)}
SELECTORS = {"table": ".jp-OutputArea-output.jp-RenderedHTMLCommon table", "figure": ".jp-OutputArea-output img"}
NOTEBOOK_SECONDS = 240  # per notebook; each takes seconds on the tiny model


def missing_tools() -> str | None:
    """Why the test cannot run here, or None."""
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: `make browser` (pip install -e '.[browser]')"
    if not Path(CHROMIUM).exists():
        log = REPO_ROOT / ".venv" / "browser-install.log"
        last = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        return (f"no {CHROMIUM}: `make browser` installs Debian's chromium with apt-get as root "
                f"(last attempt: {last[0] if last else 'none'})")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(server: dict, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{server['url']}/api/{path}?token={server['token']}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """This environment's JupyterLab on 127.0.0.1 with a token, its config in a fresh folder (no user kernels,
    settings or workspaces leak in), serving a fresh folder: the run folder of the notebooks it runs."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    home, root = tmp_path_factory.mktemp("jupyter"), tmp_path_factory.mktemp("browser_check")
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')  # no news toast
    port, token = free_port(), secrets.token_hex(16)
    env = os.environ | {"JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
                        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
                        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(home / "server.log", "w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = {"url": f"http://127.0.0.1:{port}", "token": token, "log": home / "server.log", "root": root}
    try:
        wait_for_server(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def wait_for_server(server: dict, process, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {server['log'].read_text()[-2000:]}")
        try:
            api(server, "status")
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer in {seconds} s: {server['log'].read_text()[-2000:]}")


def prepare_notebooks(out: Path) -> Path:
    """Each numbered notebook with the smoke parameters injected (papermill's own parameter cell, not run),
    its run folder `out`."""
    import papermill

    folder = out / "notebooks"
    folder.mkdir(parents=True)
    for name in NOTEBOOKS:
        papermill.execute_notebook(str(REPO_ROOT / "notebooks" / f"{name}.ipynb"), str(folder / f"{name}.ipynb"),
                                   parameters={"params_path": str(REPO_ROOT / "params" / "smoke.yaml"),
                                               "overrides": {}, "run_dir": str(out)},
                                   prepare_only=True, kernel_name="python3", progress_bar=False)
    return folder


def run_all_cells(page, server: dict, path: Path) -> None:
    """Open the notebook, wait for its kernel, Run > Run All Cells, wait until every cell ran or one failed, save."""
    # ?reset: a fresh workspace, so the notebooks opened before do not reopen (and start kernels)
    page.goto(f"{server['url']}/lab/tree/{path.relative_to(server['root'])}?reset&token={server['token']}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
    # Run All before the kernel is up opens a kernel chooser: wait for the status bar's idle kernel first
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
            const failed = [...document.querySelectorAll('.jp-OutputArea-output')]
                .some(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr' && o.textContent.includes('Traceback'));
            return !prompts.some(p => p.includes('*')) && (failed || prompts.every(p => /\\[\\d+\\]/.test(p)));
        }""", timeout=NOTEBOOK_SECONDS * 1000, polling=500)
    page.keyboard.press("Control+s")
    page.get_by_text("Saving completed").wait_for(timeout=30_000)


def shut_down_kernels(server: dict) -> None:
    """One notebook's kernel at a time: the next notebook gets the CPU (both cores)."""
    for session in api(server, "sessions"):
        api(server, f"sessions/{session['id']}", method="DELETE")


def errors_in(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [f"cell {i}: {o['ename']}: {o['evalue']}" for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o["output_type"] == "error"]


def unrun_cells(path: Path) -> list[int]:
    nb = nbformat.read(path, as_version=4)
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.execution_count is None]


@pytest.mark.slow
def test_every_notebook_runs_in_jupyterlab_in_chromium(jupyterlab):
    from playwright.sync_api import sync_playwright

    folder = prepare_notebooks(jupyterlab["root"])
    shots = jupyterlab["root"] / "screenshots"
    print(f"notebooks and screenshots: {folder.parent}")
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        try:
            for name in NOTEBOOKS:
                path = folder / f"{name}.ipynb"
                run_all_cells(page, jupyterlab, path)
                shown = page.locator(SELECTORS[RENDERED[name][-1]])
                if shown.count():  # the screenshot shows the table or figure (or, failed, where it stopped)
                    shown.first.scroll_into_view_if_needed()
                page.screenshot(path=str(shots / f"{name}.png"))
                assert not page.locator(".jp-Dialog").count(), f"{name}: a dialog is open: {page.locator('.jp-Dialog').inner_text()}"
                shut_down_kernels(jupyterlab)
                assert errors_in(path) == [], f"{name} failed in JupyterLab (screenshot {shots / name}.png)"
                assert unrun_cells(path) == [], f"{name}: cells that did not run"
                for kind in RENDERED[name]:
                    assert page.locator(SELECTORS[kind]).count() > 0, f"{name}: no {kind} rendered"
        finally:
            browser.close()
    assert sorted(p.stem for p in shots.glob("*.png")) == NOTEBOOKS


def test_the_skip_reason_says_what_is_missing_and_how_to_install_it(monkeypatch):
    monkeypatch.setitem(missing_tools.__globals__, "CHROMIUM", "/nonexistent/chromium")
    assert "make browser" in missing_tools()
