"""`prsteward demo --fast` keeps serving its dashboard until Ctrl-C, then exits 0."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def test_demo_serves_the_dashboard_until_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRSTEWARD_")}
    env["COLUMNS"] = "160"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--fast", "--port", "0", "--folder", "d"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    output = b""
    url = None
    deadline = time.monotonic() + 240
    try:
        while url is None and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                assert process.poll() is None, output.decode(errors="replace")
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            output += chunk
            match = re.search(rb"Dashboard:\s+(http://127\.0\.0\.1:\d+)/", output)
            if match:
                url = match.group(1).decode()
        if url is None:
            print(output.decode(errors="replace"))  # shown by pytest on failure
            print("exit status:", process.poll())
        assert url is not None, "no dashboard URL in the demo's output (printed above)"
        with urllib.request.urlopen(url + "/", timeout=30) as response:
            page = response.read().decode()
        assert response.status == 200 and "acme/repo-000" in page
        with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
            assert b"prsteward_open_pull_requests" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
