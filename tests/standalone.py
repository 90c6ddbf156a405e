"""A throwaway Spark standalone cluster on 127.0.0.1: one master and N workers from the pyspark install.

The pip package ships `bin/spark-class` but not `sbin/start-master.sh`, so each daemon is started
with `spark-class` as a subprocess this module owns (its own process group, so a worker's executor
JVMs go with it), and `standalone_cluster` always stops every one of them, even when start-up or
the body fails. Ports are picked free at runtime; logs, work and scratch dirs live under `root`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
LOOPBACK = "127.0.0.1"
# Set in every daemon's environment and inherited by what it starts (launcher, executors, Python
# workers), so a test can find every process that belongs to one cluster.
ROOT_VAR = "GROWTH_STANDALONE_ROOT"

# Variables of the calling process that would point a daemon at another Spark or JVM.
_INHERITED_SPARK_VARS = (
    "PYSPARK_GATEWAY_PORT",
    "PYSPARK_GATEWAY_SECRET",
    "SPARK_CONF_DIR",
    "SPARK_VERSION",
    "SPARK_MASTER_HOST",
    "SPARK_WORKER_DIR",
    "SPARK_WORKER_OPTS",
    "SPARK_MASTER_OPTS",
    "SPARK_DAEMON_JAVA_OPTS",
    "SPARK_LOCAL_DIRS",
    "SPARK_LOG_DIR",
    "SPARK_PID_DIR",
)


@dataclass
class StandaloneCluster:
    """What a test needs to submit to the cluster and to look at what ran on it."""

    master_url: str  # spark://127.0.0.1:PORT
    master_web_url: str  # http://127.0.0.1:PORT of the master's UI (JSON at /json/)
    worker_dirs: list[Path]  # each worker's --work-dir: app-<id>/<executor id>/ per executor it ran
    log_dir: Path
    processes: list[subprocess.Popen] = field(default_factory=list, repr=False)

    def state(self) -> dict:
        """The master's JSON status: workers, aliveworkers, activeapps, completedapps, ..."""
        with urllib.request.urlopen(f"{self.master_web_url}/json/", timeout=5) as response:
            return json.load(response)

    def wait_until_ready(self, timeout: float = 90.0) -> StandaloneCluster:
        """Block until every worker has registered with the master; fail early if a daemon died."""
        workers = len(self.worker_dirs)
        deadline = time.monotonic() + timeout
        alive = None
        while time.monotonic() < deadline:
            dead = [p.args[1] for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"standalone daemon exited during start-up: {dead}\n{self.log_tails()}")
            with contextlib.suppress(OSError, ValueError):
                alive = self.state().get("aliveworkers")
                if alive == workers:
                    return self
            time.sleep(0.5)
        raise TimeoutError(
            f"{alive} of {workers} workers registered with {self.master_url} within {timeout:.0f}s\n{self.log_tails()}"
        )

    def log_tails(self, chars: int = 2000) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}" for log in sorted(self.log_dir.glob("*.log"))
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def daemon_env(root: Path) -> dict[str, str]:
    """The calling environment, minus any other Spark's settings, bound to loopback and to `root`."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_SPARK_VARS}
    conf_dir = root / "conf"  # empty: no spark-defaults.conf or spark-env.sh from anywhere else
    conf_dir.mkdir(parents=True, exist_ok=True)
    env.update(
        **{ROOT_VAR: str(root)},
        SPARK_HOME=str(SPARK_HOME),
        SPARK_CONF_DIR=str(conf_dir),
        SPARK_LOCAL_IP=LOOPBACK,
        SPARK_LOG_DIR=str(root / "logs"),
        SPARK_LOCAL_DIRS=str(root / "local"),
        SPARK_DAEMON_MEMORY="256m",  # the master and workers only schedule; executors get their own JVM
        SPARK_DAEMON_JAVA_OPTS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",  # light on a shared 2-core machine
    )
    return env


@contextlib.contextmanager
def standalone_cluster(
    root: Path, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 90.0, wait: bool = True
) -> Iterator[StandaloneCluster]:
    """Start a master and `workers` workers, wait until all registered, yield, then stop them all.

    With wait=False it yields as soon as the daemons are launched, so the caller can prepare
    something else meanwhile and call `wait_until_ready` before submitting.
    """
    root.mkdir(parents=True, exist_ok=True)
    env = daemon_env(root)
    log_dir = Path(env["SPARK_LOG_DIR"])
    log_dir.mkdir(parents=True, exist_ok=True)
    master_port, master_web_port = free_port(), free_port()
    cluster = StandaloneCluster(
        master_url=f"spark://{LOOPBACK}:{master_port}",
        master_web_url=f"http://{LOOPBACK}:{master_web_port}",
        worker_dirs=[root / f"worker-{n}" for n in range(1, workers + 1)],
        log_dir=log_dir,
    )
    try:
        cluster.processes.append(
            _start(
                env,
                log_dir / "master.log",
                "org.apache.spark.deploy.master.Master",
                "--host",
                LOOPBACK,
                "--port",
                str(master_port),
                "--webui-port",
                str(master_web_port),
            )
        )
        for n, work_dir in enumerate(cluster.worker_dirs, start=1):
            work_dir.mkdir()
            cluster.processes.append(
                _start(
                    env,
                    log_dir / f"worker-{n}.log",
                    "org.apache.spark.deploy.worker.Worker",
                    cluster.master_url,
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(free_port()),
                    "--webui-port",
                    str(free_port()),
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--work-dir",
                    str(work_dir),
                )
            )
        if wait:
            cluster.wait_until_ready(timeout)
        yield cluster
    finally:
        stop(cluster.processes)


def _start(env: dict[str, str], log: Path, main_class: str, *args: str) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [str(SPARK_CLASS), main_class, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _die_with_parent() -> None:
    """Linux: SIGTERM the daemon if the test process dies without running its finally (a CI timeout's kill)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG; survives spark-class's exec of java


def stop(processes: list[subprocess.Popen], grace: float = 20.0) -> None:
    """SIGTERM each daemon's process group (workers first, executors with them), then SIGKILL stragglers.

    Returns once every group is empty, so nothing of the cluster outlives the call.
    """
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in reversed(processes):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in reversed(processes):
        _signal_group(process, signal.SIGKILL)  # also an executor or launcher the daemon left behind
        process.wait()
    deadline = time.monotonic() + 10
    while any(_group_alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)  # a killed member disappears a moment after the signal


def _group_alive(process: subprocess.Popen) -> bool:
    try:
        os.killpg(process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the group start_new_session gave this daemon; its id is the daemon's pid


def processes_under(root: Path) -> list[int]:
    """Live processes of the cluster at `root`: daemons, their launchers, executors and Python workers."""
    mark = f"{ROOT_VAR}={root}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):  # gone meanwhile, or another user's
                if mark in (proc / "environ").read_bytes().split(b"\0"):  # a zombie's environ is empty
                    pids.append(int(proc.name))
    return pids
