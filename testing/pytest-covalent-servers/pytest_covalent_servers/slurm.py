"""A real single-node Slurm cluster on 127.0.0.1 for the tests: munged, slurmctld, slurmd.

    cluster = SlurmCluster.start()
    cluster.conf                  # pass as SLURM_CONF (or the executor's slurm_conf option)
    cluster.run(["squeue"])       # a client command against it
    cluster.stop()

Everything (keys, sockets, state, logs, config) lives in one temporary directory; ports are
chosen free. Needs the Debian packages slurm-wlm and munge (``covalent-servers-install``), root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port, server_dir

CLUSTER = "covtest"


def _node_line() -> str:
    """This machine's node definition from ``slurmd -C``, named localhost."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    words = out.splitlines()[0].split()
    rest = [w for w in words if not w.startswith(("NodeName=", "UpTime="))]
    return " ".join(["NodeName=localhost", "NodeAddr=127.0.0.1", *rest, "State=UNKNOWN"])


@dataclass
class SlurmCluster:
    directory: Path
    conf: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def start(cls, kill_wait: int = 5) -> SlurmCluster:
        directory = server_dir("covalent-slurm-")
        os.chmod(directory, 0o755)
        for sub in ("munge", "state", "spool", "log"):
            (directory / sub).mkdir()
        munge = pwd.getpwnam("munge")
        key = directory / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True)
        os.chmod(directory / "munge", 0o755)
        for path in (directory / "munge", key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        key.chmod(0o600)
        socket = directory / "munge" / "munge.socket"
        conf = directory / "slurm.conf"
        conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER}",
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={socket}",
                    f"StateSaveLocation={directory / 'state'}",
                    f"SlurmdSpoolDir={directory / 'spool'}",
                    f"SlurmctldPidFile={directory / 'slurmctld.pid'}",
                    f"SlurmdPidFile={directory / 'slurmd.pid'}",
                    f"SlurmctldLogFile={directory / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={directory / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "MpiDefault=none",
                    "ReturnToService=2",
                    "JobCompType=jobcomp/filetxt",
                    f"JobCompLoc={directory / 'log' / 'jobcomp.txt'}",
                    "MinJobAge=300",
                    f"KillWait={kill_wait}",
                    "SchedulerParameters=sched_interval=1",
                    _node_line(),
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        cluster = cls(directory=directory, conf=conf)
        env = {**os.environ, "SLURM_CONF": str(conf)}
        log = directory / "log"
        cluster.procs["munged"] = subprocess.Popen(
            [
                "runuser",
                "-u",
                "munge",
                "--",
                "munged",
                "--foreground",
                f"--socket={socket}",
                f"--key-file={key}",
                f"--log-file={log / 'munged.log'}",
                f"--pid-file={directory / 'munge' / 'munged.pid'}",
                f"--seed-file={directory / 'munge' / 'munged.seed'}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cluster._wait(lambda: socket.exists(), "munged to listen")
        for name, argv in (
            ("slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)]),
            ("slurmd", ["slurmd", "-D", "-f", str(conf), "-N", "localhost"]),
        ):
            cluster.procs[name] = subprocess.Popen(
                argv,
                env=env,
                stdout=open(log / f"{name}.out", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
        cluster._wait(cluster._idle, "the node to be idle")
        return cluster

    def run(self, argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """A Slurm client command against this cluster."""
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        return subprocess.run(argv, capture_output=True, text=True, env=env, **kwargs)  # type: ignore[call-overload]

    def _idle(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.directory / 'log'}")
        out = self.run(["sinfo", "-h", "-o", "%T"]).stdout.strip()
        return out in ("idle", "mixed", "allocated")

    def _wait(self, check: object, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; see {self.directory}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Cancel every job, stop the daemons, delete the directory."""
        with contextlib.suppress(Exception):
            self.run(["scancel", "--full", "--user=root"], timeout=10)
            self.run(["scancel", "--full", "--user=covtest"], timeout=10)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
