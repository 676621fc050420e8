"""A throw-away one-node SLURM cluster on localhost for the tests: munged, slurmctld and slurmd with a slurm.conf
written under a temporary folder, on ports of their own, stopped (and waited for) at the end.

Debian's ``slurm-wlm`` and ``munge`` packages provide the daemons; :func:`start_cluster` raises
:class:`ClusterUnavailable` with a one-line reason when they are missing or do not start.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalCluster:
    root: Path
    conf: Path
    partition: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=self.env)

    def stop(self) -> None:
        """Cancel every job, stop the daemons (SIGTERM, then SIGKILL after 10 s) and wait for them."""
        try:
            self.run("scancel", "--full", "--user", str(os.getuid()), timeout=10)
        except Exception:
            pass
        end = time.monotonic() + 15  # let the cancelled jobs end while slurmd can still clean up after them
        while self.procs and time.monotonic() < end:
            try:
                if not self.run("squeue", "-h", "-t", "running,completing", timeout=5).stdout.strip():
                    break
            except Exception:
                break
            time.sleep(0.3)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.procs.clear()
        self._kill_strays()

    def _kill_strays(self) -> None:
        """Job step daemons (slurmstepd) and job processes left behind carry our SLURM_CONF: kill them."""
        mark = f"SLURM_CONF={self.conf}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                if mark in (proc / "environ").read_bytes().split(b"\0"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass


def start_cluster(root: Path, cpus: int = 2) -> LocalCluster:
    """Start munged, slurmctld and slurmd under ``root``; raise ClusterUnavailable with the reason on failure."""
    missing = [
        c
        for c in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
        if shutil.which(c) is None and not Path("/usr/sbin", c).exists()
    ]
    if missing:
        raise ClusterUnavailable(
            f"SLURM/munge not installed (missing {', '.join(missing)}; apt-get install slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        raise ClusterUnavailable("a local SLURM cluster needs root (slurmd runs jobs as their user)")
    root = Path(root)
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = root / "munge" / "munge.socket"
    host = socket.gethostname().split(".")[0]
    partition = "lnltest"
    conf = root / "slurm.conf"
    conf.write_text(f"""ClusterName=lnltest{os.getpid()}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=600
SchedulerParameters=sched_interval=1
MessageTimeout=10
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = LocalCluster(root, conf, partition, env)
    log = open(root / "log" / "daemons.out", "ab")
    try:
        cluster.procs.append(
            subprocess.Popen(
                [
                    "munged",
                    "--foreground",
                    "--force",
                    f"--socket={sock}",
                    f"--key-file={key}",
                    f"--pid-file={root / 'munge' / 'munged.pid'}",
                    f"--log-file={root / 'munge' / 'munged.log'}",
                    f"--seed-file={root / 'munge' / 'munged.seed'}",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
        _wait(lambda: sock.exists(), 10, "munged did not create its socket", cluster)
        cluster.procs.append(
            subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], stdout=log, stderr=log, env=env)
        )
        _wait(lambda: cluster.run("sinfo", "-h", timeout=5).returncode == 0, 30, "slurmctld did not answer", cluster)
        cluster.procs.append(
            subprocess.Popen(["slurmd", "-D", "-f", str(conf), "-N", host], stdout=log, stderr=log, env=env)
        )
        _wait(
            lambda: cluster.run("sinfo", "-h", "-o", "%t", timeout=5).stdout.strip() in ("idle", "alloc", "mix"),
            30,
            "the node did not become idle",
            cluster,
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait(ready, seconds: float, message: str, cluster: LocalCluster) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        dead = [p.args[0] for p in cluster.procs if p.poll() is not None]
        if dead:
            raise ClusterUnavailable(f"{dead[0]} exited at start (see {cluster.root / 'log'})")
        try:
            if ready():
                return
        except (subprocess.TimeoutExpired, OSError):
            pass
        time.sleep(0.3)
    raise ClusterUnavailable(f"{message} within {seconds:.0f} s (see {cluster.root / 'log'})")
