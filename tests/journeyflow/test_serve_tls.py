"""`journeyflow serve` over HTTPS and behind a TLS proxy: when the builder's cookies get `Secure`,
and which client address the login throttle counts (issue 17 item 5).

Each test starts the real command as a process on loopback, as tests/api/test_serve.py does, and
signs in to the builder with httpx as a browser would, sending back the cookies it was given
(by hand: a client's cookie jar would hold a Secure cookie back from plain HTTP, which is the
browser's business, not what is tested here). The certificate is made here, self-signed for
127.0.0.1, and is the only one the client trusts.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from builder_ui.sessions import LOGIN_COOKIE, SESSION_COOKIE
from journeyflow.cli import main
from tests.api.conftest import ROOT, STARTUP_POLLS, free_socket

HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BUILDER_LINE = re.compile(r"^Builder: \S+ \(shown this once\) user (\S+), password (\S+)$")
MAX_GUESSES = 200  # failed logins a test sends, at most, before it expects the throttle's 429
PROXY = "127.0.0.1"  # the test process, as the TLS proxy in front of the server
CLIENT, OTHER_CLIENT = "203.0.113.7", "203.0.113.8"  # browsers behind the proxy


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def trusted(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (and localhost), valid from a day ago for a day."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "journeyflow test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    paths = Certificate(directory / "cert.pem", directory / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    output: list[str]
    verify: ssl.SSLContext | bool

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", verify=self.verify, **kwargs)  # type: ignore[arg-type]

    @property
    def admin(self) -> tuple[str, str]:
        """The first builder user, as the first start printed it."""
        found = next(m for line in self.output if (m := BUILDER_LINE.match(line.strip())))
        return found.group(1), found.group(2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


def start(tmp_path: Path, *extra: str, scheme: str = "http", verify: ssl.SSLContext | bool = True,
          env: dict[str, str] | None = None) -> Served:
    """`journeyflow serve` on a free port, run in `tmp_path` (where a journeyflow.toml is read),
    once it has printed its first-start lines and answers /healthz."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # the child binds it; a race with another process is possible but rare
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-c", "from journeyflow.cli import main; main()", "serve", "--port", str(port),
         "--database", f"sqlite:///{tmp_path / 'jf.db'}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment, cwd=tmp_path)
    assert process.stdout is not None
    output = []
    for line in process.stdout:
        output.append(line)
        if line.strip().startswith("curl "):
            break
    url = f"{scheme}://127.0.0.1:{port}"
    for _ in range(STARTUP_POLLS):
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/healthz", verify=verify).status_code == 200:
                return Served(process, url, output, verify)
        except httpx.TransportError:
            time.sleep(0.01)
    process.kill()
    process.wait()
    raise AssertionError("journeyflow serve did not answer:\n" + "".join(output))


def set_cookie(response: httpx.Response, name: str) -> tuple[str, set[str]]:
    """The value the response sets cookie `name` to, and its attributes' names, lower-cased."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        key, _, value = first.partition("=")
        if key == name:
            return value, {attribute.partition("=")[0].lower() for attribute in attributes}
    raise AssertionError(f"no Set-Cookie for {name} in {response.headers.get_list('set-cookie')}")


def log_in(served: Served, username: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """The login form fetched and posted, with the form's double-submit cookie sent back."""
    form = served.request("GET", "/builder/login", headers=headers or {})
    assert form.status_code == 200, form.text
    token, _ = set_cookie(form, LOGIN_COOKIE)
    found = HIDDEN_CSRF.search(form.text)
    assert found is not None
    return served.request("POST", "/builder/login", headers={**(headers or {}), "Cookie": f"{LOGIN_COOKIE}={token}"},
                          data={"username": username, "password": password, "csrf_token": found.group(1),
                                "next": "/builder/"})


def guess_until_throttled(served: Served, forwarded_for: str) -> None:
    """Wrong passwords, each for another name (so only the source address adds up), from a
    browser the proxy says is `forwarded_for`, until the throttle answers 429."""
    for attempt in range(MAX_GUESSES):
        answer = log_in(served, f"guess-{forwarded_for}-{attempt}", "wrong", {"X-Forwarded-For": forwarded_for})
        if answer.status_code == 429:
            return
        assert answer.status_code == 401, answer.text
    raise AssertionError(f"{MAX_GUESSES} failed logins from one address and no 429")


def test_over_https_the_session_cookie_is_secure(tmp_path: Path, certificate: Certificate) -> None:
    served = start(tmp_path, "--ssl-certfile", str(certificate.cert), "--ssl-keyfile", str(certificate.key),
                   scheme="https", verify=certificate.trusted())
    try:
        assert any(line.startswith(f"Journeyflow API on {served.url} ") for line in served.output)
        assert any(line.startswith(f"Builder: {served.url}/builder/ ") for line in served.output)
        signed_in = log_in(served, *served.admin)
        assert signed_in.status_code == 303, signed_in.text
        _, attributes = set_cookie(signed_in, SESSION_COOKIE)
        assert {"secure", "httponly", "samesite"} <= attributes
        form = served.request("GET", "/builder/login")
        assert "secure" in set_cookie(form, LOGIN_COOKIE)[1]
        assert form.headers["strict-transport-security"].startswith("max-age=")  # never plain HTTP again
        with pytest.raises(httpx.TransportError):  # the port speaks TLS only
            httpx.get(served.url.replace("https://", "http://") + "/healthz")
    finally:
        served.stop()


def test_behind_a_trusted_proxy_the_forwarded_scheme_and_address_count(tmp_path: Path) -> None:
    served = start(tmp_path, "--proxy-headers", "--forwarded-allow-ips", PROXY)
    try:
        signed_in = log_in(served, *served.admin, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT})
        assert signed_in.status_code == 303, signed_in.text
        assert "secure" in set_cookie(signed_in, SESSION_COOKIE)[1]
        assert "strict-transport-security" in signed_in.headers  # the proxy's https is the request's
        plain = log_in(served, *served.admin, headers={"X-Forwarded-Proto": "http", "X-Forwarded-For": CLIENT})
        assert "secure" not in set_cookie(plain, SESSION_COOKIE)[1]  # the proxy says the browser spoke http

        # The throttle counts the browser's address, not the proxy's: one browser guessing is
        # stopped, another behind the same proxy is not.
        guess_until_throttled(served, CLIENT)
        assert log_in(served, "someone", "wrong", {"X-Forwarded-For": CLIENT}).status_code == 429
        assert log_in(served, "someone", "wrong", {"X-Forwarded-For": OTHER_CLIENT}).status_code == 401
    finally:
        served.stop()


@pytest.mark.parametrize("flags", [(), ("--proxy-headers", "--forwarded-allow-ips", "192.0.2.1")],
                         ids=["no-proxy-headers", "proxy-not-trusted"])
def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path: Path, flags: tuple[str, ...]) -> None:
    served = start(tmp_path, *flags)
    try:
        signed_in = log_in(served, *served.admin, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT})
        assert signed_in.status_code == 303, signed_in.text
        assert "secure" not in set_cookie(signed_in, SESSION_COOKIE)[1]

        # Every guess is counted against the peer itself, whatever address the header claims.
        guess_until_throttled(served, CLIENT)
        assert log_in(served, "someone", "wrong", {"X-Forwarded-For": OTHER_CLIENT}).status_code == 429
    finally:
        served.stop()


@pytest.mark.parametrize("how", ["flag", "environment", "settings file"])
def test_secure_cookies_marks_them_secure_over_plain_http(tmp_path: Path, how: str) -> None:
    """A TLS proxy whose headers this process does not trust: the browser speaks HTTPS anyway."""
    flags: tuple[str, ...] = ("--secure-cookies",) if how == "flag" else ()
    env = {"JOURNEYFLOW_SECURE_COOKIES": "true"} if how == "environment" else {}
    if how == "settings file":
        (tmp_path / "journeyflow.toml").write_text("[serve]\nsecure_cookies = true\n", encoding="utf-8")
    served = start(tmp_path, *flags, env=env)
    try:
        form = served.request("GET", "/builder/login")
        assert "secure" in set_cookie(form, LOGIN_COOKIE)[1]
        signed_in = log_in(served, *served.admin)
        assert signed_in.status_code == 303, signed_in.text
        assert "secure" in set_cookie(signed_in, SESSION_COOKIE)[1]
    finally:
        served.stop()


def test_without_secure_cookies_plain_http_cookies_are_not_secure(tmp_path: Path) -> None:
    """The default, so that `journeyflow serve` on a laptop keeps working over http://127.0.0.1."""
    served = start(tmp_path)
    try:
        signed_in = log_in(served, *served.admin)
        assert signed_in.status_code == 303, signed_in.text
        assert "secure" not in set_cookie(signed_in, SESSION_COOKIE)[1]
    finally:
        served.stop()


def test_a_certificate_that_does_not_load_stops_serve_before_it_starts(tmp_path: Path,
                                                                       certificate: Certificate) -> None:
    url = f"sqlite:///{tmp_path / 'jf.db'}"
    wrong = CliRunner().invoke(main, ["serve", "--database", url, "--ssl-certfile", str(certificate.key)])
    assert wrong.exit_code == 1
    assert f"cannot serve HTTPS with {certificate.key}" in wrong.output
    no_cert = CliRunner().invoke(main, ["serve", "--database", url, "--ssl-keyfile", str(certificate.key)])
    assert no_cert.exit_code == 2
    assert "--ssl-keyfile and --ssl-keyfile-password need --ssl-certfile" in no_cert.output
    assert not (tmp_path / "jf.db").exists()  # stopped before the database was made
