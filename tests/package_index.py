"""A package index the tests serve themselves: one tiny wheel, in PEP 503's simple layout."""

from __future__ import annotations

import base64
import hashlib
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NAME = "cofounder-greeting"
MODULE = "cofounder_greeting"
VERSION = "1.0.0"
SOURCE = 'def greet(name):\n    return f"hello, {name}"\n'


def build_wheel(folder: Path) -> Path:
    """A valid pure-Python wheel of MODULE, written by hand so no build backend is needed."""
    dist = f"{MODULE}-{VERSION}.dist-info"
    files = {
        f"{MODULE}/__init__.py": SOURCE.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{MODULE}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel


class _Quiet(SimpleHTTPRequestHandler):
    downloads: list[str]

    def log_message(self, format: str, *args: object) -> None:
        if self.path.endswith(".whl"):
            self.downloads.append(self.path)


@contextmanager
def package_index(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve a simple index holding NAME; yields its URL and the list of wheel downloads."""
    project = root / "simple" / NAME
    project.mkdir(parents=True)
    wheel = build_wheel(project)
    (project / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>\n')
    downloads: list[str] = []
    handler = type("Handler", (_Quiet,), {"downloads": downloads})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple", downloads
    finally:
        server.shutdown()
        server.server_close()
