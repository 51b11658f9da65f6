"""The NATS options of `serve`, checked before the first connection: the URL, the TLS
files and the creds file. A problem that retrying cannot mend is a `NatsConfigError` whose
message names the option or the file; the JetStream stream and consumer names too."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlparse

from dsiem_sql import defaults

BAD_NAME = re.compile(r"[\s.*>/\\]")


@dataclass(frozen=True)
class StreamOptions:
    """`serve --intake jetstream`: the stream to read events from, and the limits it is
    created with when it is missing (an existing stream is used as it is)."""

    stream: str = defaults.JS_STREAM
    max_age: float = defaults.JS_MAX_AGE_HOURS * 3600  # seconds; 0: no limit
    max_bytes: int = -1  # -1: no limit
    replicas: int = defaults.JS_REPLICAS


class NatsConfigError(Exception):
    """The NATS options cannot work as given; the message names the option or the server."""


@dataclass(frozen=True)
class NatsOptions:
    url: str = defaults.NATS_URL  # may carry user:password@ or token@
    token: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    max_backoff: float = defaults.NATS_MAX_BACKOFF
    reconnect_window: float = defaults.NATS_RECONNECT_WINDOW  # seconds; 0: wait forever

    def check(self) -> None:
        """Raise NatsConfigError for a malformed URL or an unusable TLS or creds file."""
        _check_url(self.url)
        self.tls_context()
        if self.creds:
            _check_creds(self.creds)

    def tls_wanted_by(self) -> str:
        """Which options ask for TLS, comma-separated; empty if none does."""
        wanted = [option for option, value in (
            ("--nats-tls-ca", self.tls_ca), ("--nats-tls-cert", self.tls_cert),
            ("--nats-tls-key", self.tls_key),
            ("tls:// in --msq", self.url.lower().startswith("tls://"))) if value]
        return ", ".join(wanted)

    def credentials(self) -> str:
        given = [option for option, value in (
            ("--nats-token", self.token), (f"--nats-creds {self.creds}", self.creds),
            ("user:password@ or token@ in --msq", "@" in self.url.partition("://")[2]))
            if value]
        return ", ".join(given)

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_key and not self.tls_cert:
            raise NatsConfigError("--nats-tls-key needs --nats-tls-cert")
        if not (self.tls_ca or self.tls_cert):
            return None
        if self.tls_ca:
            _read("--nats-tls-ca", self.tls_ca)
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
        except ssl.SSLError as exc:
            raise NatsConfigError(f"--nats-tls-ca {self.tls_ca}: no PEM certificate in it "
                                  f"({ssl_reason(exc)})") from None
        if self.tls_cert:
            _load_cert_chain(context, self.tls_cert, self.tls_key)
        return context


def _read(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise NatsConfigError(f"{option} {path}: {exc.strerror}") from None


def ssl_reason(exc: ssl.SSLError) -> str:
    # "[X509: KEY_VALUES_MISMATCH] key values mismatch (_ssl.c:3926)" -> "key values mismatch"
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    return re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", text) or text


class _EncryptedKey(Exception):
    pass


def _load_cert_chain(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    # OpenSSL says only "PEM lib" for a file that holds no certificate or no key, so the
    # files are looked at first, to name the one at fault.
    cert_pem = _read("--nats-tls-cert", cert)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=cert_pem.decode("ascii", "replace"))
    except ssl.SSLError:
        raise NatsConfigError(f"--nats-tls-cert {cert}: no PEM certificate in it") from None
    if key is None:
        if b"PRIVATE KEY-----" not in cert_pem:
            raise NatsConfigError(f"--nats-tls-cert {cert}: no private key in it; give the "
                                  f"key file with --nats-tls-key")
    elif b"PRIVATE KEY-----" not in _read("--nats-tls-key", key):
        raise NatsConfigError(f"--nats-tls-key {key}: no PEM private key in it")

    def no_password() -> str:
        raise _EncryptedKey

    try:
        context.load_cert_chain(cert, key, password=no_password)
    except _EncryptedKey:
        raise NatsConfigError(f"{'--nats-tls-key ' + key if key else '--nats-tls-cert ' + cert}"
                              f": the private key is encrypted; give an unencrypted one"
                              ) from None
    except ssl.SSLError as exc:
        files = f"--nats-tls-cert {cert}" + (f" with --nats-tls-key {key}" if key else "")
        raise NatsConfigError(f"{files}: {ssl_reason(exc)}") from None


def _check_creds(path: str) -> None:
    """The blocks nats-py reads: the user JWT and the user nkey seed, each on the line after
    its BEGIN line (nats-py loops forever on a file without the JWT block)."""
    import nkeys

    lines = _read("--nats-creds", path).decode("utf-8", "replace").splitlines()

    def after(marker: str) -> str:
        for i, line in enumerate(lines[:-1]):
            if marker in line and lines[i + 1].strip():
                return lines[i + 1].strip()
        raise NatsConfigError(f"--nats-creds {path}: no '-----{marker}-----' block; is it "
                              f"a NATS .creds file?")

    after("BEGIN NATS USER JWT")
    seed = after("BEGIN USER NKEY SEED")
    try:
        nkeys.from_seed(bytearray(seed.encode()))
    except (nkeys.NkeysError, ValueError):
        raise NatsConfigError(f"--nats-creds {path}: the user nkey seed is not valid"
                              ) from None


def _check_url(url: str) -> None:
    """The URL forms nats-py takes: scheme://host:port or host[:port]; scheme nats or tls
    (websockets would need aiohttp)."""
    where = f"--msq {redact(url)}"
    uri = urlparse(url if "://" in url else f"nats://{url}")
    if uri.scheme not in ("nats", "tls"):
        raise NatsConfigError(f"{where}: the scheme must be nats:// or tls://")
    if not uri.hostname:
        raise NatsConfigError(f"{where}: no host name")
    try:
        uri.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError as exc:
        raise NatsConfigError(f"{where}: {exc}") from None


def redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"




def check_names(options: StreamOptions, node: str) -> None:
    """Raise NatsConfigError if the stream or the consumer of `node` cannot be named so."""
    if not options.stream or BAD_NAME.search(options.stream):
        raise NatsConfigError(f"--js-stream {options.stream!r}: a stream name cannot be empty "
                              f"or hold spaces, '.', '*', '>', '/' or '\\'")
    if BAD_NAME.search(node):
        raise NatsConfigError(f"--node {node!r}: names the JetStream consumer dsiem-sql-{node}, "
                              f"which cannot hold spaces, '.', '*', '>', '/' or '\\'")


def parse_size(option: str, text: str) -> int:
    """Bytes of a size like 500M or 20G (K, M, G, T: powers of 1024); 0 is -1, no limit."""
    text = text.strip()
    number, unit = (text[:-1], text[-1].upper()) if text[-1:].isalpha() else (text, "")
    try:
        value = float(number) * 1024 ** " KMGT".index(unit or " ")
    except ValueError:
        raise NatsConfigError(f"{option} {text!r}: give bytes or a size like 500M or 20G"
                              ) from None
    return int(value) if value > 0 else -1
