"""A real ``vireid serve`` process on loopback for the kill and adversarial tests: started
with the CLI, waited for, measured (RSS from /proc) and stopped or killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_mb(pid: int, key: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of process ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


class ServeProcess:
    """``with ServeProcess(index, checkpoint, "--token", T) as s:`` → ``s.url``, ``s.pid``."""

    def __init__(self, index, checkpoint, *options: str, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "-m", "vireid", "serve", str(index), str(checkpoint)]
        self.args += ["--port", str(self.port), "--device", "cpu", "--log-level", "warning"]
        self.args += list(options)
        self.log = log

    def __enter__(self) -> ServeProcess:
        import httpx2 as httpx

        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=out, stderr=out)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vireid serve exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("vireid serve did not come up in 180 s")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                time.sleep(0.1)

    def rss_mb(self) -> float:
        return proc_mb(self.pid, "VmRSS")

    def peak_mb(self) -> float:
        return proc_mb(self.pid, "VmHWM")

    def reset_peak(self) -> float:
        """Reset the kernel's peak-RSS mark; returns the RSS now."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.rss_mb()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def __exit__(self, *exc) -> None:
        self.stop()
