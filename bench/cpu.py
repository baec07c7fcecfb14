"""CPU time of the stack's processes, from /proc (psutil), between two readings."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import psutil


def tree(pid: int, apart: Collection[int] = ()) -> list[psutil.Process]:
    """A process and its descendants (those that exist now), without the subtrees of the
    processes in `apart` (counted on their own)."""
    try:
        found = [psutil.Process(pid)]
    except psutil.NoSuchProcess:
        return []
    i = 0
    while i < len(found):
        try:
            found += [c for c in found[i].children() if c.pid not in apart]
        except psutil.NoSuchProcess:
            pass
        i += 1
    return found


@dataclass
class Reading:
    """CPU seconds (user + system) per named group of processes, at one moment."""

    seconds: dict[str, float]

    @classmethod
    def take(cls, groups: Mapping[str, Iterable[int]]) -> Reading:
        """Read every process of every group and its descendants (a process that ended counts
        as 0). A process listed in one group is not counted again as a descendant in another:
        the stack's processes are children of the benchmark, whose own group is the load
        generator. A process is counted once however many of its group's listed processes
        it descends from (the API's group lists uvicorn and its workers)."""
        out: dict[str, float] = {}
        listed = {name: set(pids) for name, pids in groups.items()}
        for name, pids in groups.items():
            apart = set().union(*(p for n, p in listed.items() if n != name))
            total, seen = 0.0, set[int]()
            for pid in pids:
                for proc in tree(pid, apart):
                    if proc.pid in seen:  # a group may list a process and its children
                        continue
                    seen.add(proc.pid)
                    try:
                        t = proc.cpu_times()
                        total += t.user + t.system
                    except psutil.NoSuchProcess:
                        continue
            out[name] = total
        return cls(out)

    def since(self, earlier: Reading) -> dict[str, float]:
        """CPU seconds spent per group between `earlier` and this reading."""
        return {n: max(0.0, s - earlier.seconds.get(n, 0.0)) for n, s in self.seconds.items()}


def service_pids(home: object) -> dict[str, list[int]]:
    """PostgreSQL's postmaster and the broker(s) of an embedded home (empty when external)."""
    from devstack import embedded_pg, services

    out: dict[str, list[int]] = {}
    pg = embedded_pg.pid(home)  # type: ignore[arg-type]
    if pg:
        out["postgres"] = [pg]
    brokers = [r.pid for n, r in services.State(home).load().items()  # type: ignore[arg-type]
               if (n == "kafka" or n.startswith("kafka-")) and r.pid]
    if brokers:
        out["broker"] = brokers
    return out


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))
