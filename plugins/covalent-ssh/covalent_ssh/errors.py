"""covalent-ssh's errors: both are covalent-core ``ExecutorError``s."""

from __future__ import annotations

from covalent_core.errors import ExecutorError


class SSHConnectError(ExecutorError, ConnectionError):
    """Connecting failed; the message says why and what to do."""


class RemoteCommandError(ExecutorError):
    """A remote command exited non-zero; ``command``, ``stderr`` and ``exit_code`` say how."""
