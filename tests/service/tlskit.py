"""TLS for the NATS tests: a CA with server and client certificates made by the `openssl`
command, and a TCP proxy that records the bytes a client sends to the server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]


def _openssl(*args: str | Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make test certificates")
    subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", *EC, "-keyout", key, "-out", cert, "-subj", f"/CN=test-{name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_certs(directory: Path) -> Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    ca, ca_key = make_ca(directory)
    paths = []
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        _openssl("req", "-x509", *EC, "-keyout", key, "-out", cert, "-subj", f"/CN={name}",
                 "-CA", ca, "-CAkey", ca_key, "-addext", "subjectAltName=IP:127.0.0.1",
                 "-addext", "basicConstraints=critical,CA:FALSE",
                 "-addext", f"extendedKeyUsage={usage}")
        paths += [cert, key]
    return Certs(ca, *paths)


class RecordingProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream` and keeps every byte the clients
    sent, in `sent` (all connections, in arrival order)."""

    def __init__(self, upstream: int):
        self.upstream = upstream
        self.sent = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.connections += 1
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while data := source.recv(65536):
                if record:
                    with self._lock:
                        self.sent += data
                target.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            source.close()

    def client_bytes(self) -> bytes:
        with self._lock:
            return bytes(self.sent)

    def close(self) -> None:
        self._listener.close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
