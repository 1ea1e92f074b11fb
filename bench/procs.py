"""Memory and CPU of process trees, read from /proc (the bench scripts' shared measuring helpers)."""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

SAMPLE_EVERY_S = 0.05


def tree(pid: int) -> Iterator[int]:
    """The process and all its descendants."""
    yield pid
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            yield from tree(int(child))


def memory_kb(pid: int, pss: bool = False) -> int:
    """RSS of a process in kB; with `pss`, its proportional share (forked children's shared pages are split
    between them instead of counted in each)."""
    path, field = (f"/proc/{pid}/smaps_rollup", "Pss:") if pss else (f"/proc/{pid}/status", "VmRSS:")
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(threading.Thread):
    """Samples the summed memory of process trees every SAMPLE_EVERY_S and keeps the peak."""

    def __init__(self, roots: Callable[[], Sequence[int]] = lambda: [os.getpid()], pss: bool = False) -> None:
        super().__init__(daemon=True)
        self.roots, self.pss = roots, pss
        self.peak_kb = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            total = sum(memory_kb(pid, self.pss) for root in self.roots() for pid in tree(root))
            self.peak_kb = max(self.peak_kb, total)
            self._done.wait(SAMPLE_EVERY_S)

    def stop(self) -> float:
        """Stops sampling; returns the peak in MB (for this process alone, never below its lifetime peak)."""
        self._done.set()
        self.join()
        own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if not self.pss else 0
        return max(self.peak_kb, own_kb) / 1024


def cpu_ticks(pid: int, reaped_children: bool = False) -> int | None:
    """utime + stime of a process in clock ticks (plus its ended, reaped children's); None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    return ticks + int(fields[13]) + int(fields[14]) if reaped_children else ticks
