"""carryover installs as a product: a wheel built from this checkout, installed without ``-e`` into a fresh
virtualenv, carries its catalog and starts a worker (``faust -A app worker``) that answers its web root.

The fresh environment gets the pinned dependencies from this checkout's virtualenv (added to its path; its
``.pth`` files, the editable install among them, are not processed), so the test needs no download.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.stack import RunningStack, free_port

REPO = Path(__file__).resolve().parents[2]
UNSHIPPED = (
    ".git",
    ".venv*",
    "var",
    "build",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "tests",
)


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)  # noqa: S603
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_a_wheel_installed_into_a_fresh_venv_runs_a_worker(stack: RunningStack, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(wheels),
        ".",
        cwd=REPO,
    )
    wheel = next(wheels.glob("carryover-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv), cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel), cwd=tmp_path)
    fresh_site = Path(
        _run(
            str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).strip()
    )
    (fresh_site / "zz_carryover_dependencies.pth").write_text(site.getsitepackages()[0] + "\n")

    where = _run(
        str(python),
        "-c",
        "import app, app.catalog.model as m; print(app.__file__); print(len(m.default_catalog().topics))",
        cwd=tmp_path,
    ).split()
    assert where[0].startswith(str(fresh_site)), where  # the installed copy, not this checkout
    assert int(where[1]) >= 6  # topics.yaml shipped inside the package

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CARRYOVER_")},
        **stack.env,
        "CARRYOVER_ROLES": "normalize",
        "CARRYOVER_APP_ID": f"wheel-{port}",
        "CARRYOVER_TOPIC_PREFIX": f"wheel{port}.",
        "CARRYOVER_DATA_DIR": str(tmp_path / "data"),
        "CARRYOVER_WEB_PORT": str(port),
        "CARRYOVER_KEY_FILE": str(tmp_path / "keys.json"),
    }
    (tmp_path / "keys.json").write_text("{}")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(  # noqa: S603
        [str(python), "-m", "faust", "-A", "app", "worker", "-l", "info"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + 90, 0
        while time.monotonic() < deadline and status != 200 and worker.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                    status = int(response.status)
            except OSError:
                time.sleep(0.3)
        output = (tmp_path / "worker.log").read_text(errors="replace")
        assert status == 200, output[-3000:]
        print(f"\nwheel {wheel.name} installed in {venv}; worker from {where[0]} answered / with {status}")
    finally:
        worker.terminate()
        worker.wait(30)
