"""covalent-ssh: run covalent-core tasks on any machine reachable over SSH, and cancel them.

from covalent_ssh import SSHExecutor

@ct.electron(executor=SSHExecutor(hostname="lab-01", username="me",
                                  ssh_key_file="~/.ssh/id_ed25519"))
"""

from __future__ import annotations

from covalent_core.sdk import Executor, hookimpl

from .client import Connection, SSHTarget, connection
from .errors import RemoteCommandError, SSHConnectError
from .executor import SSHExecutor

__version__ = "0.1.0"


@hookimpl
def covalent_executor_classes() -> list[type[Executor]]:
    """The executors this plugin provides."""
    return [SSHExecutor]


__all__ = [
    "Connection",
    "RemoteCommandError",
    "SSHConnectError",
    "SSHExecutor",
    "SSHTarget",
    "connection",
]
