"""How files move: Covalent's file-transfer strategies (``ct.fs_strategies``).

Each method returns the call (a function of :mod:`.transfer_calls` and its arguments) that
performs the transfer where the task runs. ``Shutil`` copies on the resource; ``Rsync`` copies
there or to/from another host over SSH, verifying its host key as covalent-ssh does; ``HTTP``
downloads (and uploads with PUT); ``S3`` uses boto3.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import transfer_calls

if TYPE_CHECKING:
    from .file_transfer import File

Call = tuple[Callable[..., Any], tuple[Any, ...]]
"""A function to run where the task runs, and its arguments."""

HTTP_TIMEOUT = 60.0
"""Seconds an HTTP transfer waits for the server before it fails (not a bound on its length)."""


class FileTransferStrategy:
    """Base of the strategies: ``cp`` (both ends on the resource), ``download`` (the source
    is remote), ``upload`` (the destination is remote)."""

    def cp(self, from_file: File, to_file: File) -> Call:
        raise NotImplementedError(f"{type(self).__name__} does not copy between local paths")

    def download(self, from_file: File, to_file: File) -> Call:
        raise NotImplementedError(f"{type(self).__name__} does not download")

    def upload(self, from_file: File, to_file: File) -> Call:
        raise NotImplementedError(f"{type(self).__name__} does not upload")


class Shutil(FileTransferStrategy):
    """Copy a file (or a folder's content) between two paths on the resource."""

    def cp(self, from_file: File, to_file: File) -> Call:
        return transfer_calls.copy_local, (from_file.filepath, to_file.filepath, from_file.is_dir)


class Rsync(FileTransferStrategy):
    """``rsync -a`` on the resource, or between it and ``user@host`` over SSH.

    As covalent-ssh, the host's key is verified against ``known_hosts`` (default: ssh's own,
    ``~/.ssh/known_hosts``) and never accepted blindly; ``private_key_path`` is the key to log
    in with; ``port`` the SSH port.
    """

    def __init__(
        self,
        user: str = "",
        host: str = "",
        private_key_path: str | None = None,
        *,
        port: int = 22,
        known_hosts: str | None = None,
    ) -> None:
        if private_key_path and not os.path.exists(os.path.expanduser(private_key_path)):
            raise FileNotFoundError(
                f"Rsync: the private key {private_key_path!r} does not exist; give the path "
                "of the key that logs in to the host"
            )
        self.user = user
        self.host = host
        self.private_key_path = private_key_path
        self.port = int(port)
        self.known_hosts = known_hosts

    def ssh_command(self) -> list[str]:
        """The ssh command rsync runs: batch mode, host key checked, this key only."""
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(self.known_hosts)}"]
        if self.private_key_path:
            key = os.path.expanduser(self.private_key_path)
            argv += ["-i", key, "-o", "IdentitiesOnly=yes"]
        return [*argv, "-p", str(self.port)]

    def _remote(self, path: str) -> str:
        if not self.host:
            raise ValueError("Rsync needs host= (and user=) to transfer to or from a remote path")
        return f"{self.user}@{self.host}:{path}" if self.user else f"{self.host}:{path}"

    def cp(self, from_file: File, to_file: File) -> Call:
        return transfer_calls.rsync, (from_file.filepath, to_file.filepath, None)

    def download(self, from_file: File, to_file: File) -> Call:
        remote = self._remote(from_file.filepath)
        return transfer_calls.rsync, (remote, to_file.filepath, self.ssh_command())

    def upload(self, from_file: File, to_file: File) -> Call:
        remote = self._remote(to_file.filepath)
        return transfer_calls.rsync, (from_file.filepath, remote, self.ssh_command())


class HTTP(FileTransferStrategy):
    """Download from an ``http(s)://`` URL; upload to one with PUT (a presigned URL)."""

    def download(self, from_file: File, to_file: File) -> Call:
        return transfer_calls.http_download, (from_file.uri, to_file.filepath, HTTP_TIMEOUT)

    def upload(self, from_file: File, to_file: File) -> Call:
        return transfer_calls.http_upload, (from_file.filepath, to_file.uri, HTTP_TIMEOUT)


class S3(FileTransferStrategy):
    """Download from and upload to ``s3://bucket/key`` with boto3 where the task runs.

    Covalent's ``credentials`` (a shared credentials file), ``profile`` and ``region_name``;
    also ``endpoint_url`` (an S3-compatible service). Without them boto3 finds credentials as
    usual where the task runs.
    """

    def __init__(
        self,
        credentials: str | None = None,
        profile: str | None = None,
        region_name: str | None = None,
        *,
        endpoint_url: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.profile = profile
        self.region_name = region_name
        self.endpoint_url = endpoint_url

    def _options(self) -> dict[str, Any]:
        return {
            "credentials": self.credentials,
            "profile": self.profile,
            "region_name": self.region_name,
            "endpoint_url": self.endpoint_url,
        }

    def download(self, from_file: File, to_file: File) -> Call:
        bucket, key = from_file.bucket_and_key()
        args = (bucket, key, to_file.filepath, from_file.is_dir, self._options())
        return transfer_calls.s3_download, args

    def upload(self, from_file: File, to_file: File) -> Call:
        bucket, key = to_file.bucket_and_key()
        args = (from_file.filepath, bucket, key, from_file.is_dir, self._options())
        return transfer_calls.s3_upload, args


def _unsupported(name: str) -> type[FileTransferStrategy]:
    class Unsupported(FileTransferStrategy):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError(
                f"the {name} file-transfer strategy is not provided by covalent-core: use S3, "
                "HTTP, Rsync or Shutil, or move the files from within the electron"
            )

    Unsupported.__name__ = Unsupported.__qualname__ = name
    return Unsupported


GCloud = _unsupported("GCloud")
Blob = _unsupported("Blob")

__all__ = ["HTTP", "S3", "Blob", "FileTransferStrategy", "GCloud", "Rsync", "Shutil"]
