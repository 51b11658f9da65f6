"""Security of the NATS connection (issue 10): TLS is enforced when it is configured, .creds
files work, and configuration errors end serve with a clear message instead of being retried
as if the network were down."""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import pytest
from kit import CONFIGS, cli, wait_until
from natsjwt import Key, Operator
from nkeys import PREFIX_BYTE_ACCOUNT
from scenario import ping_events, wait_log
from servekit import NatsServer, Serve, free_port, publish
from tlskit import RecordingProxy, make_ca, make_certs

PING_LINKS = "SELECT count(*) FROM alarm_events WHERE event_id LIKE 'ping-%'"


def serve_args(workdir: Path, url: str, *extra: str) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return ["serve", "--node", "dsiem-backend-0", "--configs", str(CONFIGS), "--msq", url,
            "--db", str(workdir / "dsiem.db"), "--logs", str(workdir / "logs"), *extra]


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    return result.stderr.splitlines()[-1]


@pytest.fixture
def running():
    """start(thing) starts a NatsServer or Serve and has it stopped after the test."""
    things: list[NatsServer | Serve] = []

    def start(thing):
        things.append(thing)
        thing.start()
        return thing

    yield start
    for thing in reversed(things):
        if isinstance(thing, Serve):
            if thing.proc is not None:
                thing.proc.kill()
                thing.proc.wait()
        else:
            thing.stop()


@pytest.fixture
def certs(tmp_path):
    return make_certs(tmp_path / "tls")


def tls_context(certs, client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if client_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def tls_server_args(certs) -> tuple[str, ...]:
    return ("--tls", "--tlscert", str(certs.server_cert), "--tlskey", str(certs.server_key))


def correlates(node: Serve, url: str, **connect) -> None:
    publish(url, ping_events(int(time.time()) - 300), **connect)
    node.wait_for(PING_LINKS, [(17,)])


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("asked_by", ["tls-url", "tls-ca"])
def test_tls_configured_refuses_a_plaintext_server(tmp_path, nats_server, asked_by):
    with RecordingProxy(nats_server.port) as proxy:
        if asked_by == "tls-url":
            url, extra, wanted = f"tls://127.0.0.1:{proxy.port}", [], "tls:// in --msq"
        else:
            ca, _ = make_ca(tmp_path / "tls")
            url, extra = f"nats://127.0.0.1:{proxy.port}", ["--nats-tls-ca", str(ca)]
            wanted = "--nats-tls-ca"
        result = cli(*serve_args(tmp_path, url, "--nats-token", "secret", *extra))
    assert error_line(result) == (
        f"error: NATS server {url} does not offer TLS, but TLS is configured ({wanted}); "
        "refusing to connect in plain text")
    assert proxy.connections >= 1  # serve did reach the server
    assert b"CONNECT" not in proxy.client_bytes()
    assert b"secret" not in proxy.client_bytes()


def test_tls_is_used_when_the_server_only_offers_it(tmp_path, certs, running):
    """A server that also takes plain text (allow_non_tls) and checks client certificates."""
    config = tmp_path / "nats.conf"
    config.write_text(
        f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}", '
        f'ca_file: "{certs.ca}", verify: true }}\n'
        "allow_non_tls: true\n"
        'authorization { token: "secret" }\n')
    server = running(NatsServer(free_port(), "-c", str(config)))
    with RecordingProxy(server.port) as proxy:
        node = running(Serve(
            tmp_path / "node", f"nats://127.0.0.1:{proxy.port}", CONFIGS, "dsiem-backend-0",
            "--nats-token", "secret", "--nats-tls-ca", str(certs.ca),
            "--nats-tls-cert", str(certs.client_cert), "--nats-tls-key", str(certs.client_key)))
        correlates(node, server.url, token="secret", tls=tls_context(certs, client_cert=True))
        assert node.stop() == 0
        sent = proxy.client_bytes()
    assert proxy.connections == 1
    assert b"CONNECT" not in sent
    assert b"secret" not in sent


def test_tls_handshake_failures_end_serve_then_the_right_files_work(tmp_path, certs, running):
    server = running(NatsServer(free_port(), *tls_server_args(certs), "--tlsverify",
                                "--tlscacert", str(certs.ca)))
    url = f"tls://127.0.0.1:{server.port}"
    other_ca, _ = make_ca(tmp_path / "other", "other-ca")
    result = cli(*serve_args(tmp_path / "wrong-ca", url, "--nats-tls-ca", str(other_ca)))
    assert error_line(result) == (
        f"error: NATS server {url}: its TLS certificate failed verification: unable to get "
        "local issuer certificate (check --nats-tls-ca)")
    result = cli(*serve_args(tmp_path / "no-cert", url, "--nats-tls-ca", str(certs.ca)))
    assert error_line(result) == (
        f"error: NATS server {url}: TLS failed: tlsv13 alert certificate required")

    node = running(Serve(
        tmp_path / "node", url, CONFIGS, "dsiem-backend-0", "--nats-tls-ca", str(certs.ca),
        "--nats-tls-cert", str(certs.client_cert), "--nats-tls-key", str(certs.client_key)))
    correlates(node, url, tls=tls_context(certs, client_cert=True))
    assert node.stop() == 0


def test_a_server_without_tls_after_a_restart_is_refused_until_tls_is_back(
        tmp_path, certs, running):
    port = free_port()
    tls_server = running(NatsServer(port, *tls_server_args(certs)))
    node = running(Serve(tmp_path / "node", f"nats://127.0.0.1:{port}", CONFIGS,
                         "dsiem-backend-0", "--nats-tls-ca", str(certs.ca)))
    tls_server.stop()
    plain_server = running(NatsServer(port))

    def refusals() -> int:
        return sum("ERROR" in line and "does not offer TLS" in line
                   for line in node.log.read_text().splitlines())

    wait_until("a refusal in the log", lambda: refusals() >= 1)
    time.sleep(2.5)  # nats-py tries again every second: the same refusal is counted, not logged
    assert refusals() == 1, node.log.read_text()
    assert node.proc is not None and node.proc.poll() is None
    plain_server.stop()
    tls_server.start()
    wait_log(node, "reconnected to NATS")
    correlates(node, tls_server.url, tls=tls_context(certs))
    assert node.stop() == 0
    counted = [line for line in node.log.read_text().splitlines()
               if "does not offer TLS" in line and "more time" in line]
    assert len(counted) == 1, node.log.read_text()  # at the end, how often it came again


# -- .creds -------------------------------------------------------------------------------


@pytest.fixture
def operator_server(tmp_path, running):
    operator = Operator()
    config = tmp_path / "operator.conf"
    config.write_text(operator.server_config())
    log = tmp_path / "nats-server.log"
    server = running(NatsServer(free_port(), "-c", str(config), "-l", str(log)))
    return operator, server, log


def test_creds_connect_and_events_are_correlated(tmp_path, operator_server, running):
    operator, server, _ = operator_server
    creds = operator.user_creds(tmp_path / "serve.creds")
    node = running(Serve(tmp_path / "node", server.url, CONFIGS, "dsiem-backend-0",
                         "--nats-creds", str(creds)))
    publisher = operator.user_creds(tmp_path / "publisher.creds")
    correlates(node, server.url, user_credentials=str(publisher))
    assert node.stop() == 0


@pytest.mark.parametrize("given", ["unknown-account", "none"])
def test_refused_credentials_end_serve(tmp_path, operator_server, given):
    operator, server, log = operator_server
    if given == "unknown-account":
        creds = operator.user_creds(tmp_path / "u.creds", Key.new(PREFIX_BYTE_ACCOUNT))
        extra = ["--nats-creds", str(creds)]
        problem = f"refused the credentials (--nats-creds {creds})"
    else:
        extra = []
        problem = "wants credentials (--nats-token, --nats-creds or user:password@ in --msq)"
    result = cli(*serve_args(tmp_path, server.url, *extra))
    assert error_line(result) == (
        f"error: NATS server {server.url} {problem}: Authorization Violation")
    assert "authentication error" in log.read_text()


# -- configuration errors -----------------------------------------------------------------


@pytest.fixture
def files(tmp_path, certs):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a PEM file\n")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(["openssl", "pkey", "-in", str(certs.client_key), "-aes256", "-passout",
                    "pass:x", "-out", str(encrypted)], check=True, capture_output=True)
    creds = Operator().user_creds(tmp_path / "good.creds")
    bad_seed = tmp_path / "bad-seed.creds"
    lines = creds.read_text().splitlines(keepends=True)
    seed_at = lines.index("-----BEGIN USER NKEY SEED-----\n") + 1
    lines[seed_at] = "SUNOTAVALIDSEED\n"
    bad_seed.write_text("".join(lines))
    return {"dir": tmp_path, "missing": tmp_path / "missing.pem", "junk": junk,
            "encrypted": encrypted, "bad-seed": bad_seed, "certs": certs}


CONFIG_ERRORS = {
    "ca-missing": (["--nats-tls-ca", "{missing}"],
                   "--nats-tls-ca {missing}: No such file or directory"),
    "ca-directory": (["--nats-tls-ca", "{dir}"], "--nats-tls-ca {dir}: Is a directory"),
    "ca-not-pem": (["--nats-tls-ca", "{junk}"],
                   "--nats-tls-ca {junk}: no PEM certificate in it (no certificate or crl "
                   "found)"),
    "cert-missing": (["--nats-tls-cert", "{missing}", "--nats-tls-key", "{client_key}"],
                     "--nats-tls-cert {missing}: No such file or directory"),
    "cert-not-pem": (["--nats-tls-cert", "{junk}", "--nats-tls-key", "{client_key}"],
                     "--nats-tls-cert {junk}: no PEM certificate in it"),
    "cert-without-key": (["--nats-tls-cert", "{client_cert}"],
                         "--nats-tls-cert {client_cert}: no private key in it; give the key "
                         "file with --nats-tls-key"),
    "key-missing": (["--nats-tls-cert", "{client_cert}", "--nats-tls-key", "{missing}"],
                    "--nats-tls-key {missing}: No such file or directory"),
    "key-not-pem": (["--nats-tls-cert", "{client_cert}", "--nats-tls-key", "{junk}"],
                    "--nats-tls-key {junk}: no PEM private key in it"),
    "key-of-another-cert": (["--nats-tls-cert", "{client_cert}", "--nats-tls-key",
                             "{server_key}"],
                            "--nats-tls-cert {client_cert} with --nats-tls-key {server_key}: "
                            "key values mismatch"),
    "key-encrypted": (["--nats-tls-cert", "{client_cert}", "--nats-tls-key", "{encrypted}"],
                      "--nats-tls-key {encrypted}: the private key is encrypted; give an "
                      "unencrypted one"),
    "key-without-cert": (["--nats-tls-key", "{client_key}"],
                         "--nats-tls-key needs --nats-tls-cert"),
    "creds-missing": (["--nats-creds", "{missing}"],
                      "--nats-creds {missing}: No such file or directory"),
    "creds-not-creds": (["--nats-creds", "{junk}"],
                        "--nats-creds {junk}: no '-----BEGIN NATS USER JWT-----' block; is it "
                        "a NATS .creds file?"),
    "creds-bad-seed": (["--nats-creds", "{bad-seed}"],
                       "--nats-creds {bad-seed}: the user nkey seed is not valid"),
    "msq-scheme": (["--msq", "http://127.0.0.1:4222"],
                   "--msq http://127.0.0.1:4222: the scheme must be nats:// or tls://"),
    "msq-no-host": (["--msq", "nats://user:password@"], "--msq nats://***@: no host name"),
    "msq-port": (["--msq", "nats://127.0.0.1:99999"],
                 "--msq nats://127.0.0.1:99999: Port out of range 0-65535"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_configuration_errors_end_serve_before_it_starts(tmp_path, files, case):
    args, message = CONFIG_ERRORS[case]
    certs = files["certs"]
    names = {**{k: str(v) for k, v in files.items() if k != "certs"},
             "client_cert": str(certs.client_cert), "client_key": str(certs.client_key),
             "server_key": str(certs.server_key)}
    args = [a.format(**names) for a in args]
    if args[0] == "--msq":
        url, args = args[1], args[2:]
    else:
        url = f"nats://127.0.0.1:{free_port()}"  # nothing listens: it must not get that far
    workdir = tmp_path / "serve"
    result = cli(*serve_args(workdir, url, *args))
    assert error_line(result) == f"error: {message.format(**names)}"
    assert list(workdir.iterdir()) == []  # neither the database nor the logs were made
