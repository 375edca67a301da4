"""A real OpenSSH server on 127.0.0.1 for the tests, with its own keys, config and log.

    server = SSHServer.start()
    server.known_hosts, server.client_key, server.port
    server.drop_connections()     # kill every per-connection sshd process (the link drops)
    server.restart()              # stop and start the listener on the same port
    server.stop()

Needs ``/usr/sbin/sshd`` (``covalent-servers-install`` installs it) and, as root, ``/run/sshd``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, server_dir

SSHD = "/usr/sbin/sshd"


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class SSHServer:
    directory: Path
    port: int
    client_key: Path
    other_key: Path
    known_hosts: Path
    wrong_known_hosts: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls) -> SSHServer:
        # Its own world-traversable directory: sshd reads authorized_keys as the target user.
        directory = server_dir("covalent-sshd-")
        os.chmod(directory, 0o755)
        for name in ("host_key", "client_key", "other_key", "impostor_key"):
            keygen(directory / name)
        authorized = directory / "authorized_keys"
        authorized.write_text((directory / "client_key.pub").read_text())
        authorized.chmod(0o644)
        port = free_port()
        (directory / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {directory / 'host_key'}",
                    f"PidFile {directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    "StrictModes no",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        host_pub = (directory / "host_key.pub").read_text().split()
        known = directory / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        impostor = (directory / "impostor_key.pub").read_text().split()
        wrong = directory / "wrong_known_hosts"
        wrong.write_text(f"[127.0.0.1]:{port} {impostor[0]} {impostor[1]}\n")
        for path in (known, wrong):
            path.chmod(0o644)
        server = cls(
            directory=directory,
            port=port,
            client_key=directory / "client_key",
            other_key=directory / "other_key",
            known_hosts=known,
            wrong_known_hosts=wrong,
            log=directory / "sshd.log",
        )
        server._launch()
        return server

    def _launch(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(self.directory / "sshd_config"), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log.read_text()}")
            time.sleep(0.02)
        raise RuntimeError("sshd did not listen within 10 s")

    def session_pids(self) -> list[int]:
        """PIDs of the per-connection sshd processes (not the commands they run)."""
        import psutil

        if self.proc is None:
            return []
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                if child.exe() == SSHD or child.name().startswith("sshd"):
                    found.append(child.pid)
        return found

    def drop_connections(self) -> int:
        """Kill every connection's sshd process, as a network failure would; return how many.

        The commands those connections started lose their channel; processes that detached
        into their own session (the tasks) are not touched.
        """
        pids = self.session_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def accepted_logins(self) -> int:
        """How many logins the server accepted so far (from its log)."""
        return self.log.read_text().count("Accepted publickey")

    def stop(self) -> None:
        self.drop_connections()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self._launch()
