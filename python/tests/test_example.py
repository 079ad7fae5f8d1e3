"""The example pipeline runs against the server and records its five steps."""

from __future__ import annotations

import os
import subprocess
import sys

import pipeproof as pp
from conftest import REPO, Server


def test_daily_positions_example_records_every_step(server: Server, client: pp.Client):
    env = dict(os.environ, PIPEPROOF_URL=server.url, PIPEPROOF_TOKEN=server.token)
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "daily_positions.py"), "--rows", "2000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[2]
    detail = client.get_run(run_id)
    assert detail["run"]["status"] == "sealed"
    steps = [s["record"]["step"] for s in detail["steps"]]
    assert steps == ["load", "deduplicate", "fix_currencies", "enrich", "aggregate"]
    dedupe = detail["steps"][1]
    assert dedupe["diff"]["removed"] == 40 and dedupe["diff"]["added"] == 0
    assert detail["steps"][2]["diff"]["changed"] > 0, "currency repairs are changed cells"
