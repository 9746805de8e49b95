"""Run the Dagster UI (`dagster dev`) so that it can be stopped by PID.

`dagster dev` started from a non-interactive shell ignores SIGINT and SIGTERM
(it inherits SIGINT as ignored and copies that to SIGTERM; see the engine
findings), so the signals are reset before it starts, and it runs in its own
process group so `stop` takes its webserver and daemon with it.

    python -m infra.dagster_ui run|stop
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HOST = os.environ.get("DAGSTER_UI_HOST", "127.0.0.1")
PORT = os.environ.get("DAGSTER_UI_PORT", "3000")


def _pid_file() -> Path:
    return Path(os.environ.get("LAKEHOUSE_STATE_DIR", ".lakehouse")).resolve() / "dagster-ui.pid"


def _reset_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()


def run() -> int:
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-h",
        HOST,
        "-p",
        PORT,
        "-m",
        "orchestration.definitions",
    ]
    process = subprocess.Popen(command, preexec_fn=_reset_signals)
    _pid_file().parent.mkdir(parents=True, exist_ok=True)
    _pid_file().write_text(str(process.pid))
    print(f"Dagster UI on http://{HOST}:{PORT} (Ctrl-C or `make down` to stop)", flush=True)

    def forward(signum, _frame):
        stop()

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        return process.wait()
    finally:
        _pid_file().unlink(missing_ok=True)


def stop(timeout: float = 30.0) -> bool:
    path = _pid_file()
    if not path.exists():
        return False
    pid = int(path.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.3)
    else:
        os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    print("Dagster UI stopped")
    return True


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) > 1 else "run"
    raise SystemExit(run() if action == "run" else (0 if stop() else 1))
