"""A Slack incoming-webhook stand-in: a real HTTP server on loopback with Slack's answers.

Like Slack it answers 200 ``ok`` to a valid message and rejects what Slack rejects: a body that is not
a JSON object -> 400 ``invalid_payload``; no ``text`` -> 400 ``no_text``; a block whose text is longer than
3,000 characters -> 400 ``invalid_blocks``. ``responses`` is a queue of (status, body, delay seconds,
headers) answers that replace the next ones (404 ``no_service``, 429 ``rate_limited``, a slow answer, ...).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from support.http import LoopbackServer

BLOCK_TEXT_LIMIT = 3000
WEBHOOK_PATH = "/services/T0TEST/B0TEST/xoxsecretwebhook42"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


def slack_verdict(body: bytes) -> tuple[int, str]:
    """What Slack answers to this webhook body (status, text)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, "invalid_payload"
    if not isinstance(payload, dict):
        return 400, "invalid_payload"
    if not isinstance(payload.get("text"), str) or not payload["text"].strip():
        return 400, "no_text"
    for block in payload.get("blocks") or []:
        texts = [block.get("text")] + list(block.get("fields") or [])
        for text in texts:
            if isinstance(text, dict) and len(str(text.get("text", ""))) > BLOCK_TEXT_LIMIT:
                return 400, "invalid_blocks"
    return 200, "ok"


class SlackReceiver(LoopbackServer):
    def __init__(self) -> None:
        self.responses: list[tuple[int, str, float, dict]] = []
        self.received: list[Received] = []
        super().__init__()

    @property
    def url(self) -> str:
        """The webhook URL (its path is the secret part, as in Slack's)."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers), body))
                status, text = slack_verdict(body)
                delay, headers = 0.0, {}
                if receiver.responses:
                    status, text, delay, headers = receiver.responses.pop(0)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(text.encode())))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        return Handler
