"""File transfers, as Covalent's ``ct.fs``: files moved where a task runs, before or after it.

    @ct.electron(files=[ct.fs.TransferFromRemote("s3://bucket/in.csv", "/data/in.csv")])
    def task(files=[]):
        (from_path, to_path), = files

Each transfer becomes two steps of the task's environment (:mod:`covalent_core._workflow.deps`): one
that gives the task its ``(from, to)`` paths in ``files`` (creating the temporary file of a
path left out, as Covalent does), and the transfer itself, before the function
(``Order.BEFORE``) or after it returned (``Order.AFTER``). They run where the task runs, in
its process: a cancel stops a transfer at once, and a transfer writes under a temporary name,
so no truncated file is left under the real one. A failed transfer fails the node, naming
source and destination. The strategy is chosen from the paths' schemes unless one is given:
local to local ``Shutil``, ``http(s)://`` ``HTTP``, ``s3://`` ``S3``; ``Rsync`` for SSH hosts.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..sdk.runner import FILES_KEYWORD
from . import strategies as fs_strategies
from . import transfer_calls
from .enums import Order
from .strategies import FileTransferStrategy

Dumps = Callable[[Any, str], bytes]
"""Pickles a value; the text names it in the error when it cannot be pickled."""


REMOTE_SCHEMES = frozenset({"s3", "http", "https", "gs", "blob", "globus", "ftp"})
_DOWNLOADERS: dict[str, type[FileTransferStrategy]] = {
    "http": fs_strategies.HTTP,
    "https": fs_strategies.HTTP,
    "s3": fs_strategies.S3,
    "gs": fs_strategies.GCloud,
    "blob": fs_strategies.Blob,
}


class File:
    """A path or URL (``s3://``, ``https://``, ``file://``, or a plain path).

    ``is_remote`` marks a plain path as on another host (for ``Rsync``); ``is_dir`` a folder
    (also a path ending in ``/``); ``include_folder``: move the folder itself, not only its
    content. Without a path, a new temporary file ``/tmp/UUID`` (created where the task runs).
    """

    def __init__(
        self,
        filepath: str | None = None,
        is_remote: bool = False,
        is_dir: bool = False,
        include_folder: bool = False,
    ) -> None:
        if filepath is not None and not isinstance(filepath, str):
            raise TypeError(f"a File's path is a string, not {filepath!r}")
        self.id = str(uuid.uuid4())
        if filepath is None:
            filepath = self._temp_path()
        parts = urlsplit(filepath)
        scheme = parts.scheme.lower() or "file"
        if scheme != "file" and scheme not in REMOTE_SCHEMES:
            raise ValueError(
                f"File {filepath!r}: scheme {scheme!r} is not supported (use a path, file://, "
                "s3://, http:// or https://)"
            )
        self.scheme = scheme
        self._netloc = parts.netloc
        self._path = posixpath.normpath(parts.path) if parts.path else ""
        if parts.path.endswith("/") and self._path != "/":
            self._path += "/"
        self._is_remote = is_remote
        self._is_dir = is_dir
        self._include_folder = include_folder

    def _temp_path(self) -> str:
        return f"/tmp/{self.id}"

    @property
    def is_remote(self) -> bool:
        """True for a URL of a remote scheme, or a path marked remote."""
        return self._is_remote or self.scheme in REMOTE_SCHEMES

    @property
    def is_dir(self) -> bool:
        """True for a folder (declared so, or a path ending in ``/``)."""
        return self._is_dir or self._path.endswith("/")

    @property
    def is_temp_file(self) -> bool:
        """True when no path was given: a temporary file made where the task runs."""
        return self.filepath == self._temp_path()

    @property
    def filepath(self) -> str:
        """The path part; a folder's ends in ``/`` unless the folder itself is moved."""
        path = self._path
        if self.is_dir and not self._include_folder and not path.endswith("/"):
            path += "/"
        if self._include_folder:
            path = path.rstrip("/")
        return path

    @property
    def uri(self) -> str:
        """The full URL (``file://`` for a path)."""
        return f"{self.scheme}://{self._netloc}{self._path}"

    def bucket_and_key(self) -> tuple[str, str]:
        """For ``s3://bucket/key``: the bucket and the key."""
        return self._netloc, self._path.lstrip("/")

    def __repr__(self) -> str:
        return f"File({self.uri!r})"


class Folder(File):
    """A :class:`File` that is a folder."""

    def __init__(
        self,
        filepath: str | None = None,
        is_remote: bool = False,
        is_dir: bool = True,
        include_folder: bool = False,
    ) -> None:
        super().__init__(filepath, is_remote, is_dir, include_folder)


def _as_file(value: File | str | None, what: str) -> File:
    if isinstance(value, File):
        return value
    if value is None or isinstance(value, str):
        return File(value)
    raise TypeError(f"FileTransfer's {what} is a File, a path or a URL, not {value!r}")


def guess_strategy(from_file: File, to_file: File) -> FileTransferStrategy:
    """The strategy the two ends' schemes call for (as Covalent chooses it)."""
    if from_file.is_remote and to_file.is_remote:
        raise ValueError(
            f"FileTransfer from {from_file.uri} to {to_file.uri}: both ends are remote; one "
            "must be a path where the task runs"
        )
    remote = from_file if from_file.is_remote else to_file if to_file.is_remote else None
    if remote is None:
        return fs_strategies.Shutil()
    strategy = _DOWNLOADERS.get(remote.scheme)
    if strategy is None:
        raise ValueError(
            f"FileTransfer: no strategy moves {remote.uri} by default; pass one, e.g. "
            "strategy=ct.fs_strategies.Rsync(user=..., host=...)"
        )
    return strategy()


class FileTransfer:
    """Move ``from_file`` to ``to_file`` where the task runs, before or after it."""

    def __init__(
        self,
        from_file: File | str | None = None,
        to_file: File | str | None = None,
        order: Order = Order.BEFORE,
        strategy: FileTransferStrategy | None = None,
    ) -> None:
        self.from_file = _as_file(from_file, "from_file")
        self.to_file = _as_file(to_file, "to_file")
        self.order = Order(order)
        self.strategy = strategy or guess_strategy(self.from_file, self.to_file)
        if not isinstance(self.strategy, FileTransferStrategy):
            raise TypeError(
                f"FileTransfer's strategy is a file-transfer strategy, not {strategy!r}"
            )
        self.call = self._call()  # refused now, not where the task runs

    def _call(self) -> fs_strategies.Call:
        strategy, source, destination = self.strategy, self.from_file, self.to_file
        if source.is_remote:
            return strategy.download(source, destination)
        if destination.is_remote:
            return strategy.upload(source, destination)
        return strategy.cp(source, destination)

    @property
    def label(self) -> str:
        """How errors name the transfer."""
        return f"file transfer {self.from_file.uri} -> {self.to_file.uri}"

    def steps(
        self, dumps: Dumps, keyword: str = FILES_KEYWORD
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The runner's two steps: the one giving the task its paths (as ``keyword``), and
        the transfer (its place is :attr:`order`)."""
        source, destination = self.from_file, self.to_file
        paths = (source.filepath, destination.filepath)
        prepare_args = (*paths, source.is_temp_file, destination.is_temp_file, paths)
        prepare = {
            "kind": "call",
            "label": f"{self.label} (preparing)",
            "function": dumps(transfer_calls.prepare, self.label),
            "args": dumps(list(prepare_args), self.label),
            "kwargs": dumps({}, self.label),
            "retval_keyword": keyword,
        }
        function, args = self.call
        transfer = {
            "kind": "call",
            "label": self.label,
            "function": dumps(function, self.label),
            "args": dumps(list(args), self.label),
            "kwargs": dumps({}, self.label),
            "retval_keyword": "",
        }
        return prepare, transfer

    def __repr__(self) -> str:
        return f"FileTransfer({self.from_file.uri!r}, {self.to_file.uri!r}, {self.order.value})"


def TransferFromRemote(
    from_filepath: str,
    to_filepath: str | None = None,
    strategy: FileTransferStrategy | None = None,
    order: Order = Order.BEFORE,
) -> FileTransfer:
    """Bring ``from_filepath`` (remote) to ``to_filepath`` where the task runs, before it.

    As in Covalent, it always runs before the task (``order`` is accepted and ignored)."""
    is_dir = from_filepath.endswith("/")
    if is_dir and not (to_filepath or "").endswith("/"):
        raise ValueError("the source is a folder (ends in '/'): end the destination with '/' too")
    return FileTransfer(
        File(from_filepath, is_remote=True, is_dir=is_dir),
        File(to_filepath, is_dir=is_dir),
        Order.BEFORE,
        strategy,
    )


def TransferToRemote(
    to_filepath: str,
    from_filepath: str | None = None,
    strategy: FileTransferStrategy | None = None,
    order: Order = Order.AFTER,
) -> FileTransfer:
    """Send ``from_filepath`` (where the task runs) to ``to_filepath`` (remote), after it.

    As in Covalent, it always runs after the task (``order`` is accepted and ignored)."""
    is_dir = bool(from_filepath and from_filepath.endswith("/"))
    if is_dir and not to_filepath.endswith("/"):
        raise ValueError("the source is a folder (ends in '/'): end the destination with '/' too")
    return FileTransfer(
        File(from_filepath, is_dir=is_dir),
        File(to_filepath, is_remote=True, is_dir=is_dir),
        Order.AFTER,
        strategy,
    )


__all__ = ["File", "FileTransfer", "Folder", "Order", "TransferFromRemote", "TransferToRemote"]
