"""A client of seed 004's broadcast API, written from the seed's text and docs/seed-api.md alone.

It knows nothing of broadcaster's code: URLs are built as the seed writes them
(``{base_url}/rest/api/{method}/{parameters…}/{signature}``), signed as docs/seed-api.md says,
and answers are parsed from XML (``<input>``, ``<status>``, ``<description>``, ``<result>``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

TIMEOUT_S = 60


@dataclass
class Answer:
    http_status: int
    input: str
    status: str
    description: str
    result: ET.Element | None
    content_type: str

    @property
    def payload(self) -> ET.Element:
        """The dynamic part: the one element inside ``<result>``."""
        assert self.result is not None and len(self.result) == 1, self
        return self.result[0]

    def child(self, tag: str) -> ET.Element:
        assert self.result is not None, self
        found = self.result.find(tag)
        assert found is not None, (tag, ET.tostring(self.result))
        return found

    def fields(self, tag: str) -> dict[str, str]:
        """``<result><tag><a>1</a>…</tag></result>`` as {"a": "1", …}."""
        return {el.tag: el.text or "" for el in self.child(tag)}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(path_params: list[str], post_params: list[bytes], secret: str) -> str:
    """docs/seed-api.md: sha256(params… + sha256(post)… + secret), lowercase hex."""
    text = "".join(path_params) + "".join(sha256_hex(p) for p in post_params) + secret
    return sha256_hex(text.encode("utf-8"))


class Seed004Client:
    def __init__(self, base_url: str, instance_id: int, public_key: str, secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.instance_id, self.public_key, self.secret = str(instance_id), public_key, secret

    # -- transport ----------------------------------------------------------------------------

    def url(self, method: str, params: list[str], signature: str) -> str:
        quoted = [urllib.parse.quote(p, safe="") for p in (*params, signature)]
        return f"{self.base_url}/rest/api/{method}/" + "/".join(quoted)

    def call(
        self,
        http_method: str,
        method: str,
        params: list[str],
        post: list[bytes] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        signature: str | None = None,
    ) -> Answer:
        sig = signature if signature is not None else sign(params, post or [], self.secret)
        req = urllib.request.Request(self.url(method, params, sig), data=body, method=http_method)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
                return self._parse(resp.status, resp.headers.get("Content-Type", ""), resp.read())
        except urllib.error.HTTPError as err:
            return self._parse(err.code, err.headers.get("Content-Type", ""), err.read())

    @staticmethod
    def _parse(status: int, content_type: str, data: bytes) -> Answer:
        root = ET.fromstring(data)
        result = root.find("result")
        return Answer(
            http_status=status,
            input=root.findtext("input") or "",
            status=root.findtext("status") or "",
            description=root.findtext("description") or "",
            result=result,
            content_type=content_type,
        )

    # -- the seed's methods -------------------------------------------------------------------

    def send_sms_by_file(
        self,
        data: bytes,
        filename: str,
        *,
        text: str | None = None,
        sender: str | None = None,
        signature: str | None = None,
    ) -> Answer:
        boundary = uuid.uuid4().hex
        parts = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        ]
        post = [data]
        for name, value in (("text", text), ("from", sender)):
            if value is not None:
                parts.append(
                    (
                        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                        f"{value}\r\n"
                    ).encode()
                )
                post.append(value.encode("utf-8"))
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        params = [self.instance_id, self.public_key]
        sig = signature if signature is not None else sign(params, post, self.secret)
        return self.call(
            "POST",
            "tools/sendSMSByFile",
            params,
            body=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            signature=sig,
        )

    def get_shortcodes(self, user_name: str) -> Answer:
        return self.call("GET", "getShortcodes", [self.instance_id, user_name, self.public_key])

    def create_broadcast_from_json(
        self,
        to: Any,
        *,
        broadcast_id: int = -1,
        shortcode: str,
        user_name: str,
        shortcode_ignore: bool = True,
        campaign_name: str = "null",
        date: str = "null",
    ) -> Answer:
        params = [
            self.instance_id,
            str(broadcast_id),
            shortcode,
            user_name,
            "true" if shortcode_ignore else "false",
            campaign_name,
            date,
            self.public_key,
        ]
        to_text = to if isinstance(to, str) else json.dumps(to)
        return self.call(
            "POST",
            "createBroadcastFromJson",
            params,
            post=[to_text.encode("utf-8")],
            body=urllib.parse.urlencode({"to": to_text}).encode(),
            content_type="application/x-www-form-urlencoded",
        )

    def _by_id(self, http_method: str, method: str, broadcast_id: int | str) -> Answer:
        return self.call(
            http_method, method, [self.instance_id, str(broadcast_id), self.public_key]
        )

    def get_broadcast(self, broadcast_id: int | str) -> Answer:
        return self._by_id("GET", "getBroadcast", broadcast_id)

    def suspend_broadcast(self, broadcast_id: int) -> Answer:
        return self._by_id("GET", "suspendBroadcast", broadcast_id)

    def resume_broadcast(self, broadcast_id: int) -> Answer:
        return self._by_id("GET", "resumeBroadcast", broadcast_id)

    def stop_broadcast(self, broadcast_id: int) -> Answer:
        return self._by_id("GET", "stopBroadcast", broadcast_id)

    def delete_broadcast(self, broadcast_id: int) -> Answer:
        return self._by_id("DELETE", "broadcast", broadcast_id)
