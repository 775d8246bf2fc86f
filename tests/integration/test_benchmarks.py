"""Every benchmark judges itself: a missed target makes it exit 1, so a script can tell a pass from a miss.

Each benchmark runs at its smallest size with ``--impossible-targets`` (every bound is one no figure can meet)
and must finish its run, print its verdict with every target FAIL, and exit 1, not crash. The resync
benchmark also runs with its real targets, which so small a run meets, and must exit 0: the exit code
follows the targets, not merely whether the run got through.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from harness.processes import REPO_ROOT, python_env

from .conftest import SERVER_URL

# The smallest run of each benchmark that still goes through all of its phases.
SMALLEST = {
    "ingest": ["--count", "5", "--repositories", "2"],
    "resync": ["--count", "40", "--repositories", "4", "--concurrency", "2"],
    "kafka": ["--count", "4", "--repositories", "2", "--partitions", "2", "--latency-events", "5",
              "--worker-concurrency", "2"],
    "soak": ["--minutes", "0.1", "--sample-seconds", "2"],
    "ui": ["--rounds", "1"],
    "parse": ["--seconds", "0.05"],
    "events": ["--pushes", "3", "--subscriptions", "3", "--count", "20", "--rounds", "1"],
    "compare": ["--versions", "3", "--requests", "5", "--page-loads", "1", "--storage-versions", "4",
                "--storage-templates", "5"],
    "helmrepo": ["--versions", "10000", "--cold", "2", "--revalidations", "20", "--archive-mb", "2"],
    "api": ["--namespaces", "20", "--charts", "40", "--tags", "12000", "--requests", "5", "--deep-pages", "1",
            "--registry-charts", "5", "--rounds", "1", "--churn", "20", "--mix-requests", "10",
            "--endpoint-seconds", "5"],
}


def bench(name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"bench/{name}.py", *SMALLEST[name], *extra], cwd=REPO_ROOT,
                          env=python_env(OCICAT_BENCH_POSTGRES=SERVER_URL), capture_output=True, text=True,
                          timeout=600)


def verdict(result: subprocess.CompletedProcess) -> list[str]:
    """The target lines of the run's verdict; the run must have got to it (no crash on the way)."""
    assert "FAILED:" not in result.stderr, result.stderr[-3000:]
    assert "\ntargets\n" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    return re.findall(r"^ {6}(PASS|FAIL)  ", result.stdout.split("\ntargets\n")[-1], re.MULTILINE)


@pytest.mark.parametrize("name", SMALLEST)
def test_a_missed_target_exits_1(name):
    result = bench(name, "--impossible-targets")
    lines = verdict(result)
    bounds = re.findall(r"\(target [<>]= -?inf", result.stdout.split("\ntargets\n")[-1])
    assert bounds and lines.count("FAIL") >= len(bounds), result.stdout[-3000:]
    assert f"{lines.count('FAIL')} of {len(lines)} targets missed (--impossible-targets)" in result.stdout
    assert result.returncode == 1, result.stdout[-3000:]


def test_met_targets_exit_0():
    result = bench("resync")
    lines = verdict(result)
    assert lines and set(lines) == {"PASS"}, result.stdout[-3000:]
    assert result.returncode == 0, result.stdout[-3000:]
