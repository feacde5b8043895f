"""notify.email against real aiosmtpd servers on loopback (plain, STARTTLS + login, TLS)."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from notify.email import EmailError, PermanentEmailError, message_id_for, send_email
from notify.sinks import MailSink, read_duplicates, read_mail_index
from settings import SmtpSecurity, settings

SUBJECT = "新订单 A-1 已分配给您"
TEXT = "张三，您好：\n订单 A-1 已分配给您。\n"
HTML = "<p>张三，您好：</p><p>订单 <b>A-1</b> 已分配给您。</p>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message, optionally refusing some recipients."""

    refuse: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.messages.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                message=message,
                tls=session.ssl is not None,
                login=session.auth_data.login
                if isinstance(session.auth_data, LoginPassword)
                else None,
            )
        )
        return "250 Message accepted"


class Authenticator:
    """Accepts exactly one user/password, over TLS only (the server enforces that)."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login == self.user and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


async def serve(
    handler: Recorder, *, ssl_context: ssl.SSLContext | None = None, **smtp: Any
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="test-relay", loop=loop, **smtp),
        host="127.0.0.1",
        port=0,
        ssl=ssl_context,
    )


def port_of(server: asyncio.Server) -> int:
    return int(server.sockets[0].getsockname()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def relay_settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(settings, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setattr(settings, "SMTP_SECURITY", SmtpSecurity.NONE)
    monkeypatch.setattr(settings, "SMTP_USER", "")
    monkeypatch.setattr(settings, "SMTP_PASSWORD", "")
    monkeypatch.setattr(settings, "SMTP_FROM", "o2o-dispatch <dispatch@o2o.test>")
    monkeypatch.setattr(settings, "SMTP_TIMEOUT_SECONDS", 5.0)
    return monkeypatch


@pytest.fixture
async def plain_relay(relay_settings: pytest.MonkeyPatch) -> AsyncIterator[Recorder]:
    handler = Recorder(refuse={"nobody@o2o.test"})
    server = await serve(handler)
    relay_settings.setattr(settings, "SMTP_PORT", port_of(server))
    yield handler
    server.close()
    await server.wait_closed()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    yield cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


async def test_sends_one_multipart_message_with_the_given_message_id(plain_relay: Recorder) -> None:
    message_id = message_id_for("A-1:1:7:email:assigned")
    await send_email(to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id=message_id)

    assert len(plain_relay.messages) == 1
    got = plain_relay.messages[0]
    assert got.rcpt_tos == ["c1@o2o.test"]
    assert got.mail_from == "dispatch@o2o.test"
    assert not got.tls and got.login is None
    message = got.message
    assert message["Subject"] == SUBJECT
    assert message["To"] == "c1@o2o.test"
    assert message["Message-ID"] == message_id
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    # SMTP carries lines ending in CRLF; the content is otherwise exactly what was given.
    assert plain.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().replace("\r\n", "\n").strip() == HTML


def test_message_id_is_stable_per_key_and_distinct_across_keys() -> None:
    first = message_id_for("A-1:1:7:email:assigned")
    assert first == message_id_for("A-1:1:7:email:assigned")
    assert first != message_id_for("A-1:2:7:email:assigned")
    assert re.fullmatch(r"<[0-9a-f]{32}@o2o-dispatch>", first)


async def test_refused_recipient_is_a_permanent_error(plain_relay: Recorder) -> None:
    with pytest.raises(PermanentEmailError, match="no such user"):
        await send_email(
            to="nobody@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<x@y>"
        )
    assert plain_relay.messages == []


async def test_closed_port_is_a_retryable_error(relay_settings: pytest.MonkeyPatch) -> None:
    relay_settings.setattr(settings, "SMTP_PORT", closed_port())
    with pytest.raises(EmailError) as caught:
        await send_email(
            to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<x@y>"
        )
    assert not isinstance(caught.value, PermanentEmailError)


async def test_starttls_with_login(
    relay_settings: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    handler = Recorder()
    server = await serve(
        handler,
        tls_context=server_tls(certificate),
        require_starttls=True,
        authenticator=Authenticator("relay-user", "s3cret"),
        auth_require_tls=True,
        auth_required=True,
    )
    relay_settings.setenv("SSL_CERT_FILE", str(certificate[0]))  # trust the test certificate
    relay_settings.setattr(settings, "SMTP_PORT", port_of(server))
    relay_settings.setattr(settings, "SMTP_SECURITY", SmtpSecurity.STARTTLS)
    relay_settings.setattr(settings, "SMTP_USER", "relay-user")
    relay_settings.setattr(settings, "SMTP_PASSWORD", "s3cret")
    try:
        await send_email(
            to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<a@b>"
        )
        assert [(m.tls, m.login) for m in handler.messages] == [(True, b"relay-user")]

        relay_settings.setattr(settings, "SMTP_PASSWORD", "wrong")
        with pytest.raises(PermanentEmailError, match="535"):
            await send_email(
                to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<a@b>"
            )
        assert len(handler.messages) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_implicit_tls(
    relay_settings: pytest.MonkeyPatch, certificate: tuple[Path, Path]
) -> None:
    handler = Recorder()
    server = await serve(handler, ssl_context=server_tls(certificate))
    relay_settings.setenv("SSL_CERT_FILE", str(certificate[0]))
    relay_settings.setattr(settings, "SMTP_PORT", port_of(server))
    relay_settings.setattr(settings, "SMTP_SECURITY", SmtpSecurity.TLS)
    try:
        await send_email(
            to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<t@b>"
        )
        assert len(handler.messages) == 1
        assert handler.messages[0].message["Message-ID"] == "<t@b>"
    finally:
        server.close()
        await server.wait_closed()


async def test_mail_sink_files_a_message_once_and_logs_a_resent_copy(
    relay_settings: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sink = MailSink(tmp_path, port=0)
    await sink.start()
    relay_settings.setattr(settings, "SMTP_PORT", sink.port)
    try:
        for message_id in ("<same@o2o>", "<same@o2o>", "<other@o2o>"):
            await send_email(
                to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id=message_id
            )
        await sink.stop()
        await sink.start()  # a restarted sink still knows what it has
        await send_email(
            to="c1@o2o.test", subject=SUBJECT, text=TEXT, html=HTML, message_id="<other@o2o>"
        )
    finally:
        await sink.stop()

    index = read_mail_index(tmp_path)
    assert [(e["message_id"], e["subject"], e["to"], e["from"]) for e in index] == [
        ("<same@o2o>", SUBJECT, ["c1@o2o.test"], "dispatch@o2o.test"),
        ("<other@o2o>", SUBJECT, ["c1@o2o.test"], "dispatch@o2o.test"),
    ]
    assert [d["message_id"] for d in read_duplicates(tmp_path, "mail")] == [
        "<same@o2o>",
        "<other@o2o>",
    ]
    assert sorted(p.name for p in (tmp_path / "mail").glob("*.eml")) == sorted(
        e["file"] for e in index
    )
    for entry in index:
        assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-\d+\.eml", entry["file"])
        stored = message_from_bytes(
            (tmp_path / "mail" / entry["file"]).read_bytes(), policy=default_policy
        )
        assert isinstance(stored, EmailMessage)
        assert stored["Message-ID"] == entry["message_id"]
        body = stored.get_body(preferencelist=("plain",))
        assert body is not None and body.get_content().replace("\r\n", "\n") == TEXT


async def failed_send_with_hook() -> tuple[EmailError, list[str]]:
    """A send expected to fail, and whether its `before_data` hook ran."""
    calls: list[str] = []

    async def before_data() -> None:
        calls.append("before DATA")

    with pytest.raises(EmailError) as raised:
        await send_email(
            to="c1@o2o.test",
            subject=SUBJECT,
            text=TEXT,
            html=HTML,
            message_id="<x@o2o>",
            before_data=before_data,
        )
    return raised.value, calls


class StallAtData(Recorder):
    """Takes the whole message, then never answers the final dot: the client cannot know."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(3600)
        return "250 never said"


class RefuseAtData(Recorder):
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "451 4.3.0 try again later"


@pytest.mark.parametrize(
    ("handler", "in_doubt"),
    [(StallAtData(), True), (RefuseAtData(), False)],
    ids=["no-answer-to-data", "data-refused"],
)
async def test_only_a_failure_after_data_began_is_in_doubt(
    relay_settings: pytest.MonkeyPatch, handler: Recorder, in_doubt: bool
) -> None:
    server = await serve(handler)
    relay_settings.setattr(settings, "SMTP_PORT", port_of(server))
    relay_settings.setattr(settings, "SMTP_TIMEOUT_SECONDS", 0.5)
    try:
        error, calls = await failed_send_with_hook()
    finally:
        server.close()
        await server.wait_closed()
    assert error.in_doubt is in_doubt
    assert calls == ["before DATA"]
    assert not isinstance(error, PermanentEmailError)


async def test_nothing_is_in_doubt_before_data(relay_settings: pytest.MonkeyPatch) -> None:
    relay_settings.setattr(settings, "SMTP_PORT", closed_port())
    error, calls = await failed_send_with_hook()
    assert error.in_doubt is False and calls == []
