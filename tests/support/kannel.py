"""A real Kannel (bearerbox + smsbox) with ``fakesmsc`` as its SMSC, for integration tests.

::

    from tests.support.kannel import KannelHarness, KannelUnavailable

    with KannelHarness() as kannel:          # installs the Debian packages if missing
        base_url, username, password = kannel.start_info
        ...                                   # KannelProvider(base_url, username, password)
        kannel.wait_for_parts(12)             # fakesmsc has printed at least 12 parts
        kannel.fakesmsc_received()            # [FakeSms(sender, receiver, kind, udh, payload)]
        kannel.messages()                     # the same, concatenated parts joined

Everything lives in a temporary directory on free loopback ports: the system's ``/etc/kannel``
and any ``kannel`` service are never read or touched. Kannel runs with ``dlr-storage =
internal`` and a ``sendsms-user`` with ``max-messages = 10`` (concatenation on). ``fakesmsc``
is started with ``-m 0`` (no mobile-originated traffic) and prints every message it is handed;
the fake SMSC inside bearerbox acknowledges each one, so a ``dlr-mask`` of 31 yields an 8
(SMSC accepted) and a 1 (delivered) receipt per message.

A limit of the fake, not of Kannel: its line protocol cuts a text at a newline, so a text with
``\\n`` shows up as two "messages" in ``fakesmsc_received``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import free_port, wait_port

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
#: Debian packages that hold the three binaries.
PACKAGES = ("kannel", "kannel-extras")
#: Seconds apt-get may take.
INSTALL_TIMEOUT_S = 600

_GOT = re.compile(r"Got message \d+: <(.*)>$")


class KannelUnavailable(RuntimeError):
    """Kannel's binaries are missing and could not be installed."""


def ensure_installed(*, install: bool = True) -> None:
    """Make sure bearerbox, smsbox and fakesmsc exist, installing the Debian packages if allowed."""
    if all(os.access(p, os.X_OK) for p in (BEARERBOX, SMSBOX, FAKESMSC)):
        return
    if not install:
        raise KannelUnavailable("kannel binaries missing")
    if shutil.which("apt-get") is None:
        raise KannelUnavailable("kannel binaries missing and no apt-get to install them")
    if os.geteuid() != 0:
        raise KannelUnavailable("kannel binaries missing and not root to apt-get install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
        if done.returncode != 0:  # a stale package list: refresh once
            subprocess.run(
                ["apt-get", "update"], env=env, capture_output=True, timeout=INSTALL_TIMEOUT_S
            )
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KannelUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {exc}") from exc
    if done.returncode != 0 or not all(
        os.access(p, os.X_OK) for p in (BEARERBOX, SMSBOX, FAKESMSC)
    ):
        raise KannelUnavailable(
            f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr[-500:]}"
        )


@dataclass(frozen=True, slots=True)
class FakeSms:
    """One SMS (one part of a long one) as fakesmsc printed it."""

    sender: str
    receiver: str
    #: ``text`` (GSM-7, printed as UTF-8), ``ucs-2`` (UTF-16-BE), ``data`` or ``udh`` (one part).
    kind: str
    #: The user data header of a concatenated part, else None.
    udh: bytes | None
    #: The message bytes: UTF-8 for GSM-7 text, UTF-16-BE for UCS-2.
    payload: bytes

    @property
    def concat(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) from an 8-bit concatenation UDH, else None."""
        u = self.udh
        if u and len(u) >= 6 and u[1] == 0x00 and u[2] == 0x03:
            return u[3], u[4], u[5]
        return None


@dataclass(frozen=True, slots=True)
class FakeMessage:
    """A whole message as the handset would show it: concatenated parts joined in order."""

    sender: str
    receiver: str
    parts: int
    payload: bytes
    ucs2_single: bool

    def text(self, *, ucs2: bool | None = None) -> str:
        """The text; ``ucs2`` says how to read the bytes (a multi-part payload does not say)."""
        if ucs2 if ucs2 is not None else self.ucs2_single:
            return self.payload.decode("utf-16-be", errors="replace")
        return self.payload.decode("utf-8", errors="replace")


def parse_fakesmsc_line(line: str) -> FakeSms | None:
    """One ``Got message N: <from to kind …>`` line as a ``FakeSms`` (None for other lines)."""
    found = _GOT.search(line.rstrip("\n"))
    if not found:
        return None
    fields = found.group(1).split(" ", 3)
    if len(fields) < 3:
        return None
    sender, receiver, kind = fields[0], fields[1], fields[2]
    rest = fields[3] if len(fields) > 3 else ""
    if kind == "text":
        return FakeSms(sender, receiver, kind, None, rest.encode("utf-8"))
    if kind == "udh":  # "<udh> data <payload>"
        udh, _, tail = rest.partition(" ")
        _, _, data = tail.partition(" ")
        return FakeSms(
            sender,
            receiver,
            kind,
            urllib.parse.unquote_to_bytes(udh),
            urllib.parse.unquote_to_bytes(data.replace("+", " ")),
        )
    return FakeSms(
        sender, receiver, kind, None, urllib.parse.unquote_to_bytes(rest.replace("+", " "))
    )


def join_parts(parts: list[FakeSms]) -> list[FakeMessage]:
    """Whole messages from parts: concatenated ones joined by (sender, receiver, ref, total)."""
    out: list[FakeMessage] = []
    pending: dict[tuple[str, str, int, int], dict[int, FakeSms]] = {}
    for sms in parts:
        concat = sms.concat
        if concat is None:
            out.append(FakeMessage(sms.sender, sms.receiver, 1, sms.payload, sms.kind == "ucs-2"))
            continue
        ref, total, seq = concat
        key = (sms.sender, sms.receiver, ref, total)
        got = pending.setdefault(key, {})
        got[seq] = sms
        if len(got) == total:
            del pending[key]
            payload = b"".join(got[i].payload for i in sorted(got))
            out.append(FakeMessage(sms.sender, sms.receiver, total, payload, False))
    return out


class KannelHarness:
    """bearerbox, smsbox and fakesmsc in a temp dir on free ports; ``stop`` kills all three."""

    def __init__(
        self,
        *,
        username: str = "broadcaster",
        password: str = "kannel-pw",
        max_messages: int = 10,
        log_level: int = 1,
        install: bool = True,
        mo: tuple[str, ...] = (),
        inbound_url: str | None = None,
    ) -> None:
        """``mo``: fakesmsc lines (``"sender receiver text msgdata"``) it sends as MO, one each,
        half a second apart; ``inbound_url``: the ``sms-service`` ``get-url`` base (query
        ``from=%p&to=%P&text=%a&id=%I&at=%t`` appended, docs/inbound.md)."""
        self.mo, self.inbound_url = mo, inbound_url
        self.username, self.password = username, password
        self.max_messages, self.log_level, self.install = max_messages, log_level, install
        self.admin_password = "kannel-admin"
        self.workdir: Path | None = None
        self.admin_port = self.smsbox_port = self.smsc_port = self.sendsms_port = 0
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The smsbox sendsms base URL (``KannelProvider``'s ``base_url``)."""
        return f"http://127.0.0.1:{self.sendsms_port}"

    @property
    def start_info(self) -> tuple[str, str, str]:
        return self.base_url, self.username, self.password

    def config_text(self) -> str:
        """The kannel.conf used (also written to ``workdir/kannel.conf``)."""
        assert self.workdir is not None
        return KANNEL_CONF.format(
            admin_port=self.admin_port,
            admin_password=self.admin_password,
            smsbox_port=self.smsbox_port,
            smsc_port=self.smsc_port,
            sendsms_port=self.sendsms_port,
            username=self.username,
            password=self.password,
            max_messages=self.max_messages,
            log_level=self.log_level,
            workdir=self.workdir,
        ) + (SMS_SERVICE_MO.format(url=self.inbound_url) if self.inbound_url else SMS_SERVICE_NONE)

    def start(self, timeout_s: float = 30.0) -> tuple[str, str, str]:
        """Start all three; returns (sendsms base URL, username, password) once Kannel is ready."""
        ensure_installed(install=self.install)
        self.workdir = Path(tempfile.mkdtemp(prefix="bc-kannel-"))
        self.admin_port, self.smsbox_port = free_port(), free_port()
        self.smsc_port, self.sendsms_port = free_port(), free_port()
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config_text())
        deadline = time.monotonic() + timeout_s
        try:
            self._spawn("bearerbox", [BEARERBOX, "-v", str(self.log_level), str(conf)])
            for port in (self.admin_port, self.smsc_port, self.smsbox_port):
                self._wait_port(port, deadline)
            self._spawn(
                "fakesmsc",
                [
                    FAKESMSC,
                    "-H",
                    "127.0.0.1",
                    "-r",
                    str(self.smsc_port),
                    "-i",
                    "0.5" if self.mo else "0",
                    "-m",
                    str(len(self.mo)),
                    *(self.mo or ("1 2 text unused",)),
                ],
            )
            self._spawn("smsbox", [SMSBOX, "-v", str(self.log_level), str(conf)])
            self._wait_port(self.sendsms_port, deadline)
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self.start_info

    def _spawn(self, name: str, cmd: list[str]) -> None:
        assert self.workdir is not None
        with open(self.workdir / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                cmd, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}:\n{self.output(name)[-2000:]}"
                )

    def _wait_port(self, port: int, deadline: float) -> None:
        while True:
            self._check_alive()
            try:
                wait_port(port, timeout_s=0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Kannel did not open port {port}") from None

    def _wait_ready(self, deadline: float) -> None:
        """Until bearerbox reports the smsbox connected and the fake SMSC online."""
        while True:
            self._check_alive()
            status = self.admin_status()
            if re.search(r"smsbox:.*on-line", status) and re.search(
                r"fake\[fake\].*\(online", status
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kannel not ready:\n{status}")
            time.sleep(0.1)

    def admin_status(self) -> str:
        """bearerbox's ``status.txt`` (empty when it does not answer)."""
        url = f"http://127.0.0.1:{self.admin_port}/status.txt?password={self.admin_password}"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop smsbox, fakesmsc, then bearerbox (TERM, then KILL); remove the temp dir."""
        for name in ("smsbox", "fakesmsc", "bearerbox"):
            proc = self._procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        end = time.monotonic() + timeout_s
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(end - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
        if self.workdir is not None and not os.environ.get("KEEP_KANNEL_DIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> KannelHarness:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what happened ---------------------------------------------------------------------------

    def output(self, name: str) -> str:
        """A process's console output (``bearerbox``, ``smsbox`` or ``fakesmsc``)."""
        if self.workdir is None:
            return ""
        path = self.workdir / f"{name}.out"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def fakesmsc_received(self) -> list[FakeSms]:
        """Every SMS part fakesmsc was handed, in order."""
        return [
            sms
            for line in self.output("fakesmsc").splitlines()
            if (sms := parse_fakesmsc_line(line)) is not None
        ]

    def messages(self) -> list[FakeMessage]:
        """Whole messages received: concatenated parts joined."""
        return join_parts(self.fakesmsc_received())

    def wait_for_parts(self, count: int, timeout_s: float = 30.0) -> list[FakeSms]:
        """Until fakesmsc has printed at least ``count`` parts; returns them."""
        end = time.monotonic() + timeout_s
        while True:
            got = self.fakesmsc_received()
            if len(got) >= count or time.monotonic() > end:
                return got
            self._check_alive()
            time.sleep(0.1)


KANNEL_CONF = """\
# broadcaster test Kannel: everything on loopback, files in {workdir}
group = core
admin-port = {admin_port}
admin-interface = 127.0.0.1
admin-password = {admin_password}
admin-allow-ip = 127.0.0.1
smsbox-port = {smsbox_port}
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = "{workdir}/bearerbox.log"
log-level = {log_level}
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{workdir}/smsbox.log"
log-level = {log_level}

group = sendsms-user
username = {username}
password = {password}
max-messages = {max_messages}
concatenation = true
"""
SMS_SERVICE_NONE = """
group = sms-service
keyword = default
text = "No service specified"
"""
#: MO messages to broadcaster's inbound webhook; no reply from Kannel itself (broadcaster sends
#: the confirmation through its own send path).
SMS_SERVICE_MO = """
group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{url}&from=%p&to=%P&text=%a&id=%I&at=%t&coding=%c&charset=%C"
"""


@pytest.fixture(scope="module")
def kannel() -> Iterator[KannelHarness]:
    harness = KannelHarness()
    try:
        harness.start()
    except KannelUnavailable as exc:
        reason = f"REAL KANNEL TESTS NOT RUN: {exc} (apt-get install kannel kannel-extras)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield harness
    harness.stop()
