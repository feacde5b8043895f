"""The embedded default's mail and SMS sinks: local servers that keep what they are sent.

- `MailSink`: a real SMTP server (aiosmtpd) storing each message as
  `STATE_DIR/mail/<timestamp>-<n>.eml` plus a line in `STATE_DIR/mail/index.jsonl`.
- `SmsSink`: an HTTP server (aiohttp) taking the webhook SMS format at `POST /sms`, keeping
  each message as a line in `STATE_DIR/sms/messages.jsonl`; `GET /sms` lists them as JSON
  and `GET /` shows mail and SMS as a page a person can read.

Both run inside the caller's asyncio loop (`await start()` / `await stop()`) and listen on
port 0 if asked (the bound port is then in `.port`).

Both drop a second copy of a message they already have, as the receiving side of a send
in doubt should (see activities/notices.py): the mail sink by Message-ID, the SMS sink by
idempotency key, answering with the first message's id. Dropped copies are not thrown away
silently: each is a line in `duplicates.jsonl` next to the log, so the fault drills count
both what recipients saw (the log) and what was re-sent (the duplicates).

`python -m notify.sinks` runs both on the configured ports.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

MAIL_DIR = "mail"
MAIL_INDEX = "index.jsonl"
SMS_DIR = "sms"
SMS_LOG = "messages.jsonl"
DUPLICATES = "duplicates.jsonl"
_EML_NAME = re.compile(r"^[0-9TZ.]+-[0-9]+\.eml$")


def _now() -> datetime:
    return datetime.now(UTC)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every well-formed line of a JSON-lines file (a torn last line is skipped)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def _append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_mail_index(state_dir: Path) -> list[dict[str, Any]]:
    """The mail sink's index, oldest first: received_at, message_id, from, to, subject, file."""
    return _read_jsonl(state_dir / MAIL_DIR / MAIL_INDEX)


def read_sms_log(state_dir: Path) -> list[dict[str, Any]]:
    """The SMS sink's log, oldest first: received_at, to, text, sender, idempotency_key, id."""
    return _read_jsonl(state_dir / SMS_DIR / SMS_LOG)


def read_duplicates(state_dir: Path, channel: str) -> list[dict[str, Any]]:
    """Copies a sink dropped, oldest first; `channel` is "mail" or "sms"."""
    folder = {"mail": MAIL_DIR, "sms": SMS_DIR}[channel]
    return _read_jsonl(state_dir / folder / DUPLICATES)


class MailSink:
    """An SMTP server that accepts every message and files it under STATE_DIR/mail.

    It is aiosmtpd's `SMTP` protocol served by the caller's own loop (what aiosmtpd's
    controllers do in a thread of their own), so it starts and stops with `await` and can
    bind port 0.
    """

    def __init__(self, state_dir: Path, *, host: str = "127.0.0.1", port: int = 8025) -> None:
        self.dir = state_dir / MAIL_DIR
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._seq = itertools.count(1)
        self._lock = asyncio.Lock()
        self._seen: set[str] = set()  # Message-IDs filed so far

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        index = await asyncio.to_thread(read_mail_index, self.dir.parent)
        self._seen = {str(m["message_id"]) for m in index if m.get("message_id")}
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="o2o-mail-sink", enable_SMTPUTF8=True, loop=loop),
            host=self.host,
            port=self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: one message fully received; store it, then say 250."""
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        headers = BytesHeaderParser(policy=default_policy).parsebytes(content)
        received = _now()
        name = f"{received.strftime('%Y%m%dT%H%M%S.%fZ')}-{next(self._seq)}.eml"
        mail_from = envelope.mail_from
        message_id = str(headers.get("Message-ID", ""))
        entry: dict[str, Any] = {
            "received_at": received.isoformat(),
            "message_id": message_id,
            "from": mail_from.decode() if isinstance(mail_from, bytes) else mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(headers.get("Subject", "")),
            "file": name,
        }
        async with self._lock:  # keeps the index in the order messages arrived
            if message_id and message_id in self._seen:
                entry.pop("file")
                await asyncio.to_thread(_append_jsonl, self.dir / DUPLICATES, entry)
            else:
                await asyncio.to_thread(self._store, name, content, entry)
                if message_id:
                    self._seen.add(message_id)
        return "250 Message accepted for delivery"

    def _store(self, name: str, content: bytes, entry: dict[str, Any]) -> None:
        (self.dir / name).write_bytes(content)
        _append_jsonl(self.dir / MAIL_INDEX, entry)


_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>o2o-dispatch: sent mail and SMS</title>
<style>
body{font-family:-apple-system,'Segoe UI','PingFang SC',Arial,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:32px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f5f7}
code{font-size:12px;color:#555}
</style></head><body>
<h1>What o2o-dispatch sent</h1>
<p>Newest first; the page refreshes every 10 seconds. Raw data:
<a href="/mail">/mail</a> (JSON), <a href="/sms">/sms</a> (JSON).</p>
<h2>E-mail ({{ mail|length }}, {{ mail_dropped }} re-sent copies dropped)</h2>
<table><tr><th>received</th><th>to</th><th>subject</th><th>message</th></tr>
{% for m in mail %}<tr><td>{{ m.received_at }}</td><td>{{ m.to|join(", ") }}</td>
<td>{{ m.subject }}</td><td><a href="/mail/{{ m.file }}">{{ m.file }}</a><br>
<code>{{ m.message_id }}</code></td></tr>
{% else %}<tr><td colspan="4">none yet</td></tr>{% endfor %}</table>
<h2>SMS ({{ sms|length }}, {{ sms_dropped }} re-sent copies dropped)</h2>
<table><tr><th>received</th><th>to</th><th>text</th><th>key</th></tr>
{% for s in sms %}<tr><td>{{ s.received_at }}</td><td>{{ s.to }}</td><td>{{ s.text }}</td>
<td><code>{{ s.idempotency_key }}</code></td></tr>
{% else %}<tr><td colspan="4">none yet</td></tr>{% endfor %}</table>
</body></html>
"""
)


class SmsSink:
    """An HTTP server that accepts the webhook SMS format and keeps each message once."""

    def __init__(self, state_dir: Path, *, host: str = "127.0.0.1", port: int = 8026) -> None:
        self.state_dir = state_dir
        self.log = state_dir / SMS_DIR / SMS_LOG
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self._ids: dict[str, str] = {}  # idempotency key -> the id answered the first time

    @property
    def url(self) -> str:
        """Where the webhook provider should POST (SMS_URL)."""
        return f"http://{self.host}:{self.port}/sms"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms", self._receive)
        app.router.add_get("/sms", self._list_sms)
        app.router.add_get("/mail", self._list_mail)
        app.router.add_get("/mail/{name}", self._raw_mail)
        app.router.add_get("/", self._page)
        return app

    async def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log = await asyncio.to_thread(read_sms_log, self.state_dir)
        self._ids = {
            str(e["idempotency_key"]): str(e["id"]) for e in log if e.get("idempotency_key")
        }
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(field), str) and body[field] for field in ("to", "text")
        ):
            return web.json_response({"error": "'to' and 'text' are required strings"}, status=400)
        entry = {
            "received_at": _now().isoformat(),
            "to": body["to"],
            "text": body["text"],
            "sender": str(body.get("sender") or ""),
            "idempotency_key": str(
                body.get("idempotency_key") or request.headers.get("Idempotency-Key", "")
            ),
            "id": f"sink-{uuid.uuid4().hex}",
        }
        key = entry["idempotency_key"]
        async with self._lock:
            first = self._ids.get(key) if key else None
            if first is not None:  # a re-send of a message we have: not sent twice
                entry["id"] = first
                await asyncio.to_thread(_append_jsonl, self.log.parent / DUPLICATES, entry)
                return web.json_response({"id": first, "duplicate": True})
            await asyncio.to_thread(_append_jsonl, self.log, entry)
            if key:
                self._ids[key] = entry["id"]
        return web.json_response({"id": entry["id"]})

    async def _list_sms(self, request: web.Request) -> web.Response:
        entries = await asyncio.to_thread(read_sms_log, self.state_dir)
        to = request.query.get("to")
        if to:
            entries = [e for e in entries if e.get("to") == to]
        return web.json_response(entries)

    async def _list_mail(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(read_mail_index, self.state_dir))

    async def _raw_mail(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        path = self.state_dir / MAIL_DIR / name
        if not _EML_NAME.match(name) or not path.is_file():  # names only: no path traversal
            raise web.HTTPNotFound()
        content = await asyncio.to_thread(path.read_bytes)
        return web.Response(body=content, content_type="text/plain", charset="utf-8")

    async def _page(self, request: web.Request) -> web.Response:
        mail, sms, mail_dropped, sms_dropped = await asyncio.gather(
            asyncio.to_thread(read_mail_index, self.state_dir),
            asyncio.to_thread(read_sms_log, self.state_dir),
            asyncio.to_thread(read_duplicates, self.state_dir, "mail"),
            asyncio.to_thread(read_duplicates, self.state_dir, "sms"),
        )
        html = _PAGE.render(
            mail=list(reversed(mail)),
            sms=list(reversed(sms)),
            mail_dropped=len(mail_dropped),
            sms_dropped=len(sms_dropped),
        )
        return web.Response(text=html, content_type="text/html", charset="utf-8")


async def _serve() -> None:  # pragma: no cover - manual use
    from settings import settings

    mail = MailSink(settings.STATE_DIR, host=settings.SMTP_HOST, port=settings.SMTP_PORT)
    sms = SmsSink(settings.STATE_DIR, port=settings.SMS_SINK_PORT)
    await mail.start()
    await sms.start()
    print(
        f"mail sink: smtp://{mail.host}:{mail.port}   sms sink and viewer: http://{sms.host}:{sms.port}/"
    )
    try:
        await asyncio.Event().wait()
    finally:
        await sms.stop()
        await mail.stop()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_serve())
