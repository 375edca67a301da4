"""A package index of the tests' own on loopback (PEP 503 "simple"), serving one tiny wheel,
fast or a byte at a time: pip installs from it with no network."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def tiny_wheel(name: str, value: str) -> tuple[str, bytes]:
    """(file name, bytes) of a wheel of ``name`` whose module has ``VALUE = value``."""
    module = name.replace("-", "_")
    dist = f"{module}-0.1.dist-info"
    files = {
        f"{module}.py": f"VALUE = {value!r}\n".encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{module}-0.1-py3-none-any.whl", buffer.getvalue()


@dataclass
class PackageIndex:
    """What the index serves, and what it saw."""

    url: str
    name: str
    download_started: threading.Event = field(default_factory=threading.Event)
    download_aborted: threading.Event = field(default_factory=threading.Event)


@contextmanager
def package_index(name: str, value: str, seconds_per_byte: float = 0.0) -> Iterator[PackageIndex]:
    """Serve ``name`` (a wheel made by :func:`tiny_wheel`) at ``PackageIndex.url``."""
    filename, wheel = tiny_wheel(name, value)
    state: dict[str, PackageIndex] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            index = state["index"]
            if self.path.rstrip("/") == f"/simple/{name}":
                body = f'<html><body><a href="/files/{filename}">{filename}</a></body></html>'
                self._send(body.encode(), "text/html")
            elif self.path == f"/files/{filename}":
                index.download_started.set()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(wheel)))
                self.end_headers()
                try:
                    if not seconds_per_byte:
                        self.wfile.write(wheel)
                        return
                    for i in range(len(wheel)):
                        self.wfile.write(wheel[i : i + 1])
                        self.wfile.flush()
                        time.sleep(seconds_per_byte)
                except OSError:
                    index.download_aborted.set()
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["index"] = PackageIndex(f"http://127.0.0.1:{server.server_address[1]}/simple", name)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["index"]
    finally:
        server.shutdown()
        server.server_close()
