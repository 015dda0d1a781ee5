"""Multipart recipient uploads, streamed to a temporary file under a size cap.

``multipart/form-data`` with one ``file`` part (CSV, TXT, TSV, XLSX or JSON) and text parts for
the broadcast's fields. A ``Content-Length`` over the cap answers 413 before a byte of the body
is read. The file goes to disk 64 KiB at a time: a 500 MB upload costs 64 KiB of memory, and one
byte over the cap answers 413 without reading further. A part whose type or name is not a
recipient file answers 415.

Uploads hold people's phone numbers, so they are spooled in a private place
(:class:`UploadSpace`: ``ApiLimits.upload_dir``, mode 0700), each API process in a directory of
its own that it holds a lock on; at start a process removes the directories whose owners died
(a killed process cannot clean up after itself).

A signed request's body was already spooled by the auth middleware (its hash is part of the
signature); :class:`SpooledStream` lets the same multipart reader parse it from there.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from broadcaster.api.bodies import RAW_BODY, too_large
from broadcaster.api.limits import ApiLimits
from broadcaster.api.problems import Problem, bad_request, invalid
from broadcaster.api.state import request_key, state

SPOOLED_BODY = request_key("spooled_body", object)
UPLOAD_SPACE = web.AppKey("upload_space", object)
#: Name of the default upload root in the system temp dir (``-<uid>`` is added).
UPLOAD_ROOT_NAME = "broadcaster-uploads"
#: A process directory, and the lock its owner holds while it lives.
PROCESS_DIR_PREFIX = "api-"
LOCK_NAME = ".lock"
#: A directory without a lock file this young may be a process just starting: left alone.
UNLOCKED_GRACE_S = 60.0
PRIVATE_MODE = 0o700
CHUNK_BYTES = 64 * 1024
#: A multipart line (boundary or part header) longer than this is refused.
MAX_LINE_BYTES = 64 * 1024
FILE_PART = "file"
#: Extensions of recipient files, and the part types a client may declare for them.
FILE_EXTENSIONS = frozenset({".csv", ".txt", ".tsv", ".xlsx", ".json"})
FILE_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/json",
        "application/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
        "application/octet-stream",
        "",
    }
)
#: Text parts an upload may carry besides the file (others are ignored).
FORM_FIELDS = frozenset(
    {
        "from",
        "shortcode",
        "text",
        "name",
        "startDate",
        "timezone",
        "region",
        "sheet",
        "requestDR",
        "callbacks",
        "window",
        "validity",
    }
)


class UploadSpace:
    """This process's private directory for uploads, under a root shared by API processes."""

    def __init__(self, root: Path) -> None:
        self.root = _private_root(root)
        self.removed = _remove_dead(self.root)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{PROCESS_DIR_PREFIX}{os.getpid()}-", dir=root))
        # Held until this process exits; the kernel lets go of it however the process ends.
        self._lock = os.open(self.dir / LOCK_NAME, os.O_CREAT | os.O_WRONLY, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def new_dir(self) -> Path:
        """A fresh directory (0700) for one upload; the caller removes it."""
        return Path(tempfile.mkdtemp(prefix="upload-", dir=self.dir))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        os.close(self._lock)


def default_upload_root() -> Path:
    return Path(tempfile.gettempdir()) / f"{UPLOAD_ROOT_NAME}-{os.getuid()}"


def _private_root(root: Path) -> Path:
    """``root`` as a directory of this user that nobody else can enter (made so if it is ours)."""
    root.mkdir(mode=PRIVATE_MODE, parents=True, exist_ok=True)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"upload directory {root} is not a directory of this user: refusing it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        root.chmod(PRIVATE_MODE)
    return root


def _remove_dead(root: Path) -> list[str]:
    """Remove the process directories whose owner no longer holds its lock; their names."""
    removed: list[str] = []
    for entry in root.iterdir():
        if not entry.name.startswith(PROCESS_DIR_PREFIX) or not entry.is_dir():
            continue
        if _owner_alive(entry):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def _owner_alive(entry: Path) -> bool:
    try:
        fd = os.open(entry / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return time.time() - entry.stat().st_mtime < UNLOCKED_GRACE_S
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass
class _SpaceSlot:
    """Where the app keeps its upload space (made at start; the app is frozen by then)."""

    limits: ApiLimits
    space: UploadSpace | None = None

    def get(self) -> UploadSpace:
        if self.space is None:
            root = self.limits.upload_dir
            self.space = UploadSpace(Path(root) if root else default_upload_root())
        return self.space


def setup_uploads(app: web.Application, limits: ApiLimits) -> None:
    """Prepare the upload space when the app starts (cleaning up after a killed predecessor)."""
    slot = _SpaceSlot(limits)
    app[UPLOAD_SPACE] = slot

    async def start(_: web.Application) -> None:
        slot.get()

    async def close(_: web.Application) -> None:
        if slot.space is not None:
            slot.space.close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)


def _upload_dir(request: web.Request, limits: ApiLimits) -> Path:
    slot = request.config_dict.get(UPLOAD_SPACE)
    if not isinstance(slot, _SpaceSlot):  # an app built without setup_uploads
        slot = _FALLBACK.setdefault(limits.upload_dir, _SpaceSlot(limits))
    return slot.get().new_dir()


_FALLBACK: dict[str, _SpaceSlot] = {}


@dataclass
class Upload:
    path: Path
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


class SpooledStream:
    """The part of aiohttp's StreamReader that MultipartReader uses, over a file."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._pushback = b""
        f.seek(0, 2)
        self._size = f.tell()
        f.seek(0)

    def at_eof(self) -> bool:
        return not self._pushback and self._f.tell() >= self._size

    def unread_data(self, data: bytes) -> None:
        self._pushback = data + self._pushback

    async def read(self, n: int = -1) -> bytes:
        if self._pushback:
            size = len(self._pushback) if n < 0 else n
            out, self._pushback = self._pushback[:size], self._pushback[size:]
            return out
        return self._f.read(n if n >= 0 else CHUNK_BYTES)

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        cap = min(max_line_length or MAX_LINE_BYTES, MAX_LINE_BYTES)
        line = b""
        while True:
            chunk = await self.read(CHUNK_BYTES)
            if not chunk:
                return line
            cut = chunk.find(b"\n")
            if cut >= 0:
                self.unread_data(chunk[cut + 1 :])
                return line + chunk[: cut + 1]
            line += chunk
            if len(line) > cap:
                raise ValueError("a multipart line is too long")


def _check_file_part(part: BodyPartReader) -> str:
    filename = PurePosixPath((part.filename or "").replace("\\", "/")).name
    ext = PurePosixPath(filename).suffix.lower()
    declared = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if declared not in FILE_TYPES or (filename and ext not in FILE_EXTENSIONS):
        raise Problem(
            415,
            f"the file must be CSV, TXT, TSV, XLSX or JSON (got {filename or 'no name'!r}, "
            f"type {declared or 'none'!r})",
            field=FILE_PART,
        )
    return filename or "upload"


async def _save_file(part: BodyPartReader, target: Path, cap_bytes: int) -> None:
    total = 0
    with open(target, "wb") as out:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            total += len(chunk)
            if total > cap_bytes:
                raise too_large(
                    f"the file is over the upload limit of {cap_bytes:,} bytes", FILE_PART
                )
            out.write(chunk)


async def _read_field(part: BodyPartReader, cap_bytes: int) -> str:
    data = b""
    while chunk := await part.read_chunk(CHUNK_BYTES):
        data += chunk
        if len(data) > cap_bytes:
            raise too_large(f"{part.name}: over {cap_bytes:,} bytes", part.name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid(f"{part.name}: must be UTF-8 text", part.name) from None


def _reader(request: web.Request) -> MultipartReader:
    stream: Any = request.get(SPOOLED_BODY)
    # SpooledStream has every method MultipartReader calls on a StreamReader.
    content: Any = SpooledStream(stream) if stream is not None else request.content
    try:
        return MultipartReader(request.headers, content)
    except (ValueError, AssertionError) as exc:
        raise bad_request(f"unreadable multipart body: {exc}", "Content-Type") from None


#: The file extension a raw body of each declared type is saved with (the readers sniff the
#: content; the extension only tells a TXT list from a one-column CSV, as an upload's name does).
RAW_SUFFIX = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "text/plain": ".txt",
    "text/tab-separated-values": ".tsv",
    "application/json": ".json",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xlsx",
    "application/octet-stream": "",
}


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    """The body 64 KiB at a time (a signed request's was read already to check its hash)."""
    read = request.get(RAW_BODY)
    if read is not None:
        yield read
        return
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        yield chunk


@asynccontextmanager
async def receive_body(
    request: web.Request, form_fields: frozenset[str], default_name: str = "body"
) -> AsyncIterator[Upload]:
    """The request's whole body as the file (a raw upload: ``Content-Type: text/csv``, …; the
    types of :data:`RAW_SUFFIX`) and the query's parameters named in ``form_fields`` as its
    fields; ``?name=`` names the file in reports. The same cap and spooling as a multipart
    file's (413 past it, before a byte is read when ``Content-Length`` says so)."""
    limits = state(request).limits
    declared_type = request.content_type.lower()
    if declared_type not in RAW_SUFFIX:
        raise Problem(
            415,
            "upload the file as multipart/form-data (a file part) or as the whole body with "
            f"its type (one of {', '.join(sorted(RAW_SUFFIX))}); got {declared_type!r}",
            field="Content-Type",
        )
    cap = limits.upload_max_bytes
    if request.content_length is not None and request.content_length > cap:
        raise too_large(
            f"the body is {request.content_length:,} bytes, over the upload limit of {cap:,}"
        )
    name = PurePosixPath(request.query.get("name", "").replace("\\", "/")).name[:200]
    tmp = _upload_dir(request, limits)
    try:
        upload = Upload(
            tmp / f"upload{RAW_SUFFIX[declared_type]}",
            name or default_name,
            {k: v for k, v in request.query.items() if k in form_fields},
        )
        total = 0
        with open(upload.path, "wb") as out:
            async for chunk in _body_chunks(request):
                total += len(chunk)
                if total > cap:
                    raise too_large(f"the file is over the upload limit of {cap:,} bytes")
                out.write(chunk)
        if total == 0:
            raise invalid("the body is empty: send the file as the body", FILE_PART)
        yield upload
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@asynccontextmanager
async def receive_upload(
    request: web.Request, form_fields: frozenset[str] = FORM_FIELDS
) -> AsyncIterator[Upload]:
    """The uploaded file on disk (deleted afterwards) and the form's text fields (those named
    in ``form_fields``; others are skipped)."""
    limits = state(request).limits
    declared = request.content_length
    if declared is not None and declared > limits.multipart_max_bytes:
        raise too_large(
            f"the body is {declared:,} bytes, over the upload limit of "
            f"{limits.multipart_max_bytes:,} (a file of at most {limits.upload_max_bytes:,} "
            "bytes and its form fields)"
        )
    tmp = _upload_dir(request, limits)
    try:
        upload: Upload | None = None
        fields: dict[str, str] = {}
        try:
            async for part in _reader(request):
                if not isinstance(part, BodyPartReader):
                    raise bad_request("nested multipart bodies are not accepted", FILE_PART)
                if part.name == FILE_PART:
                    if upload is not None:
                        raise invalid("one file per upload", FILE_PART)
                    filename = _check_file_part(part)
                    suffix = PurePosixPath(filename).suffix.lower()
                    upload = Upload(
                        tmp / f"upload{suffix if suffix in FILE_EXTENSIONS else ''}", filename
                    )
                    await _save_file(part, upload.path, limits.upload_max_bytes)
                elif part.name in form_fields:
                    fields[part.name] = await _read_field(part, limits.form_field_max_bytes)
                else:
                    await part.release()
        except (ValueError, HttpProcessingError) as exc:  # how aiohttp reports a malformed body
            raise bad_request(f"unreadable multipart body: {exc}") from None
        if upload is None:
            raise invalid('a multipart upload needs a "file" part with the recipients', FILE_PART)
        upload.fields = fields
        yield upload
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
