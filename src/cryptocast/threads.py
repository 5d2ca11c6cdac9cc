"""Thread budgets of the numeric libraries, set from one setting (``scale.threads``).

torch, LightGBM and OpenMP each start a thread per core by default. On a machine that
runs anything else (another step, another process), those threads wait on each other
and training slows several times over (docs/performance.md). Each process that fits or
backtests models caps all of them at :func:`per_worker` threads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

# cgroup v2: "<quota> <period>" in microseconds, or "max <period>" (a Kubernetes pod's
# CPU limit lands here; the affinity mask still shows every core of the node)
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# what libraries started later in this process, and child processes, read
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_limit: int | None = None


def available_cpus(cpu_max: Path = CPU_MAX) -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def per_worker(threads: int, workers: int, cpus: int) -> int:
    """``threads`` when set (> 0), else the CPUs shared out among ``workers`` (at least 1)."""
    return threads if threads > 0 else max(1, cpus // workers)


def limit(n: int) -> int:
    """Cap torch's intra-op pool, every OpenMP/BLAS pool loaded in this process
    (threadpoolctl) and LightGBM's ``n_jobs`` (:func:`current`) at ``n`` threads."""
    global _limit
    import torch
    from threadpoolctl import threadpool_limits

    for name in THREAD_ENV:
        os.environ[name] = str(n)
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    _limit = n
    return n


def current() -> int:
    """Threads a model may use: the last :func:`limit`, else this process's CPUs."""
    return _limit if _limit is not None else available_cpus()
