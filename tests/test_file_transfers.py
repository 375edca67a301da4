"""File transfers as Covalent users write them (``files=[ct.fs.FileTransfer(...)]``), against
real servers the tests start: local paths, an HTTP server, S3 (moto), rsync over the test
sshd; failures that name both ends, and a cancel in the middle of a download."""

from __future__ import annotations

import http.server
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core._file_transfer.file_transfer import (
    File,
    FileTransfer,
    Order,
    TransferFromRemote,
    TransferToRemote,
)
from covalent_core._file_transfer.strategies import S3, Rsync


def run(task, *args, timeout=120):
    @ct.lattice
    def workflow(*a):
        return task(*a)

    dispatch_id = ct.dispatch(workflow)(*args)
    return ct.get_result(dispatch_id, wait=True, timeout=timeout)


def test_local_files_before_and_after_the_task(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("input;$(data)")
    staged = tmp_path / "stage" / "in.txt"
    produced = tmp_path / "out.txt"
    kept = tmp_path / "kept" / "out.txt"

    @ct.electron(
        files=[
            FileTransfer(str(source), str(staged)),
            FileTransfer(str(produced), str(kept), order=Order.AFTER),
        ]
    )
    def work(files=None):
        text = Path(files[0][1]).read_text()
        produced.write_text(text.upper())
        return files

    result = run(work)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == [(str(source), str(staged)), (str(produced), str(kept))]
    assert staged.read_text() == "input;$(data)"
    assert kept.read_text() == "INPUT;$(DATA)"


def test_a_file_without_a_path_is_a_new_temporary_file(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x")
    transfer = FileTransfer(File(), File(str(tmp_path / "copy")))
    assert transfer.from_file.filepath.startswith("/tmp/")

    @ct.electron(files=[transfer])
    def check(files=None):
        ((src, dst),) = files
        exists = os.path.exists(src)
        os.unlink(src)
        return exists, Path(dst).read_text()

    result = run(check)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == (True, "")


def test_a_failed_transfer_fails_the_node_naming_both_ends(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    target = tmp_path / "target.txt"

    @ct.electron(files=[FileTransfer(str(missing), str(target))])
    def never(files=None):
        return "ran"

    result = run(never)
    node = result.get_node(0)
    assert result.status is ct.Status.FAILED
    assert f"file://{missing}" in node.error and f"file://{target}" in node.error, node.error
    assert "FileNotFoundError" in node.error
    assert not target.exists()


@contextmanager
def http_server(files: dict[str, bytes], seconds_per_chunk: float = 0.0) -> Iterator[dict]:
    """Serve ``files`` by path; PUT stores a body. ``seen`` says what happened."""
    seen: dict = {"started": threading.Event(), "aborted": threading.Event(), "put": {}}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            seen["started"].set()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for i in range(0, len(data), 1024):
                    self.wfile.write(data[i : i + 1024])
                    self.wfile.flush()
                    time.sleep(seconds_per_chunk)
            except OSError:
                seen["aborted"].set()

        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            seen["put"][self.path] = self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_before_and_upload_after(tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    local = tmp_path / "downloaded.bin"
    with http_server({"/data.bin": payload}) as server:

        @ct.electron(
            files=[
                TransferFromRemote(f"{server['url']}/data.bin", str(local)),
                TransferToRemote(f"{server['url']}/upload/result.bin", str(local)),
            ]
        )
        def size(files=None):
            return os.path.getsize(files[0][1])

        result = run(size)
        assert result.status is ct.Status.COMPLETED, result.get_node(0).error
        assert result.result == len(payload)
        assert local.read_bytes() == payload
        assert server["put"]["/upload/result.bin"] == payload


def test_http_404_names_the_url(tmp_path: Path) -> None:
    with http_server({}) as server:
        url = f"{server['url']}/nothing"

        @ct.electron(files=[TransferFromRemote(url, str(tmp_path / "x"))])
        def never(files=None):
            return "ran"

        result = run(never)
    error = result.get_node(0).error
    assert result.status is ct.Status.FAILED
    assert url in error and "404" in error, error


def test_cancel_during_a_slow_download_stops_it(tmp_path: Path) -> None:
    local = tmp_path / "slow.bin"
    ran = tmp_path / "ran"
    with http_server({"/slow.bin": os.urandom(200 * 1024)}, seconds_per_chunk=0.2) as server:

        @ct.electron(files=[TransferFromRemote(f"{server['url']}/slow.bin", str(local))])
        def after(files=None):
            ran.write_text("ran")

        @ct.lattice
        def workflow():
            return after()

        dispatch_id = ct.dispatch(workflow)()
        assert server["started"].wait(60), "the download never started"
        ct.cancel(dispatch_id, wait=True, timeout=60)
        assert server["aborted"].wait(30), "the download went on after the cancel"
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.CANCELLED
    assert not local.exists(), "a partial download was left under the real name"
    assert not ran.exists()


@pytest.fixture(scope="module")
def moto() -> Iterator[object]:
    from pytest_covalent_servers.aws import MotoServer

    server = MotoServer()
    yield server
    server.stop()


def test_s3_download_and_upload(
    moto, tmp_path: Path, aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = moto.client("s3")
    bucket = f"covalent-core-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="inputs/a.txt", Body=b"from s3")
    s3.put_object(Bucket=bucket, Key="inputs/deep/b.txt", Body=b"deeper")
    strategy = S3(region_name="us-east-1", endpoint_url=moto.url)
    folder = tmp_path / "folder"

    @ct.electron(
        files=[
            TransferFromRemote(f"s3://{bucket}/inputs/a.txt", str(tmp_path / "a.txt"), strategy),
            TransferFromRemote(f"s3://{bucket}/inputs/", f"{folder}/", strategy),
            TransferToRemote(f"s3://{bucket}/outputs/a.txt", str(tmp_path / "a.txt"), strategy),
        ]
    )
    def work(files=None):
        return Path(files[0][1]).read_text()

    result = run(work)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "from s3"
    assert (folder / "deep" / "b.txt").read_text() == "deeper"
    assert s3.get_object(Bucket=bucket, Key="outputs/a.txt")["Body"].read() == b"from s3"


def test_s3_missing_object_names_it(moto, tmp_path: Path, aws_credentials: None) -> None:
    bucket = f"covalent-core-{uuid.uuid4().hex[:12]}"
    moto.client("s3").create_bucket(Bucket=bucket)
    source = f"s3://{bucket}/no/such.txt"
    strategy = S3(region_name="us-east-1", endpoint_url=moto.url)

    @ct.electron(files=[TransferFromRemote(source, str(tmp_path / "x"), strategy)])
    def never(files=None):
        return "ran"

    result = run(never)
    assert result.status is ct.Status.FAILED
    assert source in result.get_node(0).error


def test_rsync_over_ssh_both_ways_with_the_host_key_verified(sshd, tmp_path: Path) -> None:
    remote_dir = tmp_path / "remote dir; $(x)"
    remote_dir.mkdir()
    (remote_dir / "in.txt").write_text("over ssh")
    strategy = Rsync(
        user="root",
        host="127.0.0.1",
        private_key_path=str(sshd.client_key),
        port=sshd.port,
        known_hosts=str(sshd.known_hosts),
    )
    local = tmp_path / "local" / "in.txt"

    @ct.electron(
        files=[
            TransferFromRemote(str(remote_dir / "in.txt"), str(local), strategy),
            TransferToRemote(str(remote_dir / "back.txt"), str(local), strategy),
        ]
    )
    def work(files=None):
        return Path(files[0][1]).read_text()

    result = run(work)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "over ssh"
    assert (remote_dir / "back.txt").read_text() == "over ssh"


def test_rsync_refuses_a_host_whose_key_does_not_match(sshd, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("secret")
    strategy = Rsync(
        user="root",
        host="127.0.0.1",
        private_key_path=str(sshd.client_key),
        port=sshd.port,
        known_hosts=str(sshd.wrong_known_hosts),
    )
    local = tmp_path / "copy.txt"

    @ct.electron(files=[TransferFromRemote(str(tmp_path / "in.txt"), str(local), strategy)])
    def never(files=None):
        return "ran"

    result = run(never)
    error = result.get_node(0).error
    assert result.status is ct.Status.FAILED
    assert "rsync exited" in error and "HOST IDENTIFICATION HAS CHANGED" in error, error
    assert not local.exists()


def test_declarations_that_cannot_work_are_refused_when_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both ends are remote"):
        FileTransfer("s3://a/b", "https://example.org/c")
    with pytest.raises(ValueError, match="scheme 'ftpx' is not supported"):
        File("ftpx://host/x")
    with pytest.raises(ValueError, match="no strategy moves"):
        TransferFromRemote("/some/remote/path", str(tmp_path / "x"))
    with pytest.raises(NotImplementedError, match="not provided by covalent-core"):
        ct.fs_strategies.GCloud()
    with pytest.raises(FileNotFoundError, match="private key"):
        Rsync(user="u", host="h", private_key_path=str(tmp_path / "nokey"))
    with pytest.raises(TypeError, match="files takes FileTransfer"):
        ct.electron(files=["/just/a/path"])
    with pytest.raises(ValueError, match="end the destination with '/'"):
        TransferFromRemote("s3://bucket/folder/", str(tmp_path / "x"))
