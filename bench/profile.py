"""Where a worker's time goes: a sampling profile of a running ``ocicat worker`` (py-spy, which reads the process
from outside: nothing in ocicat is instrumented for it), and the CPU the worker, the registry and PostgreSQL spent.

Samples are taken of the claiming threads alone, waiting included (--idle), and each one taken while an event is
worked on is put in the first category its stack shows, from the innermost frame out: a sample in a SQL statement
called while a chart is unpacked counts as SQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

# (category, substrings of a frame "function (path:line)" that put a sample in it), tried frame by frame from the
# innermost one out; the first frame that matches any category decides.
CATEGORIES = (
    ("SQL statements", ("psycopg2/",)),
    ("commit, pool", ("transaction (ocicat/db.py",)),
    ("registry fetch", ("requests/", "urllib3/", "http/client.py", "socket.py", "ssl.py")),
    ("gzip, tar", ("gzip.py", "tarfile.py", "zlib")),
    ("YAML", ("yaml/",)),
    ("README render", ("markdown", "nh3", "bleach")),
    ("JSON", ("json/",)),
    ("logging", ("logging/",)),
)
OTHER = "other Python (ocicat's own)"
IDLE = "waiting for work"
CLAIMING = "_claim_loop ("  # the frame every claiming thread's stack holds
WORKING = "process_one ("  # ... and holds while it works on an event


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(found, os.X_OK):
        raise RuntimeError("py-spy is not installed (pip install -e '.[test]')")
    return found


class WorkerProfile:
    """Start with a worker's pid, stop when it has drained the queue; ``summary`` says where the time went."""

    RATE = 200  # samples a second per thread

    def __init__(self, pid: int, registry_pid: int, output: Path):
        self.output = output
        self.processes = {"worker": psutil.Process(pid), "registry": psutil.Process(registry_pid)}
        self._cpu_before = self._cpu()
        self._spy = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--rate", str(self.RATE), "--idle",
                                      "--format", "raw", "--output", str(output), "--nonblocking"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _cpu(self) -> dict[str, float]:
        spent = {name: sum(process.cpu_times()[:2]) for name, process in self.processes.items()}
        spent["PostgreSQL"] = sum(sum(p.cpu_times()[:2]) for p in psutil.process_iter(["name"])
                                  if p.info["name"] in ("postgres", "postmaster"))
        return spent

    def stop(self) -> None:
        self.cpu = {name: spent - self._cpu_before[name] for name, spent in self._cpu().items()}
        self._spy.send_signal(signal.SIGINT)  # py-spy writes its samples when interrupted
        _, errors = self._spy.communicate(timeout=60)
        if not self.output.exists():
            raise RuntimeError(f"py-spy wrote no profile: {errors.decode(errors='replace')[-2000:]}")

    def categories(self) -> Counter:
        """Samples of the claiming threads by category."""
        counted = Counter()
        for line in self.output.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if CLAIMING not in stack or not count.isdigit():
                continue
            if WORKING not in stack:
                counted[IDLE] += int(count)
                continue
            frames = stack.split(";")
            counted[next((name for frame in reversed(frames) for name, marks in CATEGORIES
                          if any(mark in frame for mark in marks)), OTHER)] += int(count)
        return counted

    def summary(self, events: int, threads: int, seconds: float) -> list[str]:
        """Lines to print: per event, the claiming threads' time by category, and the CPU of each process."""
        counted = self.categories()
        total = sum(counted.values())
        lines = [f"where a chart event's time goes ({total} samples of {threads} claiming thread(s) over {seconds:.1f} s; "
                 f"wall time per event on one thread):"]
        for name, samples in counted.most_common():
            per_event = samples / self.RATE / events * 1000
            lines.append(f"  {name:<28} {100 * samples / total:5.1f}%  {per_event:6.2f} ms/event")
        lines.append("CPU per chart event: " + ", ".join(f"{name} {1000 * spent / events:.2f} ms"
                                                        for name, spent in self.cpu.items()))
        return lines
