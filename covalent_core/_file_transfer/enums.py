"""The enumerations of file transfers, under Covalent's names and values
(``covalent._file_transfer.enums``)."""

from __future__ import annotations

import enum


class Order(str, enum.Enum):
    """When a transfer runs: before the task's function, or after it returned."""

    BEFORE = "before"
    AFTER = "after"


class FileSchemes(str, enum.Enum):
    """The schemes a :class:`~.file_transfer.File` may name."""

    File = "file"
    S3 = "s3"
    Blob = "blob"
    GCloud = "gs"
    Globus = "globus"
    HTTP = "http"
    HTTPS = "https"
    FTP = "ftp"


class FileTransferStrategyTypes(str, enum.Enum):
    """The transfer strategies, by the names Covalent gives them."""

    Shutil = "Shutil"
    Rsync = "rsync"
    HTTP = "http"
    S3 = "s3"
    GCloud = "gs"
    FTP = "ftp"
    GLOBUS = "globus"


SchemeToStrategyMap = {
    "file": FileTransferStrategyTypes.Shutil,
    "http": FileTransferStrategyTypes.HTTP,
    "https": FileTransferStrategyTypes.HTTP,
    "s3": FileTransferStrategyTypes.S3,
    "gs": FileTransferStrategyTypes.GCloud,
    "ftp": FileTransferStrategyTypes.FTP,
    "globus": FileTransferStrategyTypes.GLOBUS,
}
"""The strategy Covalent picks for a remote file of each scheme."""


class FtCallDepReturnValue(str, enum.Enum):
    """Which files a transfer's call returns to the task: Covalent's names."""

    TO = "to"
    FROM = "from"
    FROM_TO = "from_to"
