"""What a file transfer runs where its task runs: local copies, rsync (locally or over SSH),
HTTP(S) downloads and uploads, S3 (boto3, which the resource must have for S3 only).

Standard library only otherwise, and pickled by value with the task. Every transfer writes
its destination under a temporary name and renames it when complete, so a cancelled or
failed transfer never leaves a truncated file under the name the task reads. Commands are
argument lists; rsync gets ``--protect-args`` so that no remote shell splits a path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import cloudpickle

CHUNK = 1 << 20
"""Bytes read and written at a time by the HTTP transfers."""


def prepare(
    from_path: str, to_path: str, from_temp: bool, to_temp: bool, value: tuple[str, str]
) -> tuple[str, str]:
    """Before the transfers: create the temporary files Covalent creates (a ``File()`` with no
    path), and give the task its ``(from, to)`` paths (in ``files=``)."""
    for path, temporary in ((from_path, from_temp), (to_path, to_temp)):
        if temporary:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            open(path, "a").close()
    return value


def _parent(path: str) -> None:
    parent = os.path.dirname(path.rstrip("/"))
    if parent:
        os.makedirs(parent, exist_ok=True)


def copy_local(source: str, destination: str, is_dir: bool) -> None:
    """Copy a file (or a directory's content, when ``is_dir``) on the resource."""
    if is_dir:
        shutil.copytree(source, destination, dirs_exist_ok=True)
        return
    _parent(destination)
    partial = f"{destination}.partial-{os.getpid()}"
    shutil.copyfile(source, partial)
    os.replace(partial, destination)


def rsync(source: str, destination: str, ssh: list[str] | None) -> None:
    """``rsync -a`` from ``source`` to ``destination`` (one of them ``user@host:path`` when
    ``ssh``, the ssh command whose options verify the host key)."""
    import shlex

    argv = ["rsync", "-a", "--protect-args"]
    if ssh:
        argv += ["-e", " ".join(shlex.quote(part) for part in ssh)]
    if not ssh or not destination.partition(":")[0].count("@"):
        _parent(destination)
    done = subprocess.run(
        [*argv, "--", source, destination],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise OSError(f"rsync exited with status {done.returncode}: {done.stderr.strip()}")


def http_download(url: str, destination: str, timeout: float) -> None:
    """GET ``url`` into ``destination``, a chunk at a time."""
    import urllib.request

    _parent(destination)
    partial = f"{destination}.partial-{os.getpid()}"
    request = urllib.request.Request(url, headers={"User-Agent": "covalent-core"})
    try:
        with (
            urllib.request.urlopen(request, timeout=timeout) as response,
            open(partial, "wb") as fh,
        ):
            while chunk := response.read(CHUNK):
                fh.write(chunk)
        os.replace(partial, destination)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def http_upload(source: str, url: str, timeout: float) -> None:
    """PUT the file ``source`` to ``url`` (for example a presigned URL)."""
    import urllib.request

    size = os.path.getsize(source)
    with open(source, "rb") as fh:
        request = urllib.request.Request(url, data=fh, method="PUT")
        request.add_header("Content-Length", str(size))
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()


def _s3(options: dict[str, Any]) -> Any:
    try:
        import boto3
    except ImportError:
        raise ImportError(
            "the S3 file transfer needs boto3 where the task runs: pip install boto3 there "
            "(or add it with deps_pip)"
        ) from None
    if options.get("credentials"):
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = options["credentials"]
    session = boto3.Session(
        profile_name=options.get("profile") or None,
        region_name=options.get("region_name") or None,
    )
    return session.client("s3", endpoint_url=options.get("endpoint_url") or None)


def s3_download(bucket: str, key: str, destination: str, is_dir: bool, options: dict) -> None:
    """Download an object, or every object under a prefix (``is_dir``), from S3."""
    client = _s3(options)
    if not is_dir:
        _parent(destination)
        partial = f"{destination}.partial-{os.getpid()}"
        client.download_file(bucket, key, partial)
        os.replace(partial, destination)
        return
    prefix = key.rstrip("/") + "/" if key else ""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if name and not name.endswith("/"):
                target = os.path.join(destination, name)
                _parent(target)
                client.download_file(bucket, item["Key"], target)


def s3_upload(source: str, bucket: str, key: str, is_dir: bool, options: dict) -> None:
    """Upload a file, or a directory's files under a prefix (``is_dir``), to S3."""
    client = _s3(options)
    if not is_dir:
        client.upload_file(source, bucket, key)
        return
    for root, _, names in os.walk(source):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, source).replace(os.sep, "/")
            client.upload_file(path, bucket, f"{key.rstrip('/')}/{relative}".lstrip("/"))


cloudpickle.register_pickle_by_value(sys.modules[__name__])
