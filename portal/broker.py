"""The embedded broker: kombu's file-system transport, safe against torn and corrupt messages.

Kaizen's embedded run needs no broker server: messages are files under
``var/broker/queue``. Stock kombu (5.7) writes each message in place under
its final name and reads any file with that name without taking the
writer's lock, so a reader can pick up a half-written message; its
``json.loads`` then raises out of the worker's consumer loop and the worker
dies (issue 15: "the analysis worker died on a half-written file-system broker
message"). This transport, registered in place of kombu's ``filesystem``
(``install()``, called by ``portal/celery.py``), changes both sides:

- **writer**: the message is written to a hidden temporary name in the same
  folder, flushed to disk, then renamed to its final name — a reader sees a
  whole message or none (rename is atomic within a file system);
- **reader**: a file another process still holds locked (a stock kombu
  writer at work) is left for later; a claimed file is renamed into the
  ``processed`` folder (same file system, so the claim is atomic too), and a
  file that is not a whole message envelope — torn, empty, not JSON, not an
  object with ``body`` and ``properties`` — is moved to ``var/broker/corrupt/``
  with a ``.reason`` file beside it and an ERROR log line, and the reader goes
  on to the next message. The status page lists what was set aside
  (``corrupt_messages``).

Why keep the file system rather than embed a real server: a laptop run must
start with nothing but Python (no Redis binary to install or supervise), and
the failure was a reader/writer race in ~40 lines of kombu, fixed here where
it happens. Production uses Redis (``CELERY_BROKER_URL``).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from time import monotonic, time

from kombu.exceptions import ChannelError
from kombu.transport import (  # type: ignore[attr-defined]  # _transport_cache: kombu's private table, not in the stubs
    TRANSPORT_ALIASES,
    _transport_cache,
    filesystem,
)
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

CORRUPT_FOLDER = "corrupt"
# A stock kombu writer creates the file, then locks it: a file that is empty
# and this fresh may be one whose writer has not taken its lock yet.
FRESH_EMPTY_SECONDS = 5.0
ENVELOPE_KEYS = ("body", "properties")
# A writer that died between creating its temporary file and renaming it left
# this behind; no reader will ever take it, so it is removed after a while.
STALE_TEMPORARY_SECONDS = 3600.0


class Channel(filesystem.Channel):
    """kombu's file-system channel with an atomic writer and a reader that survives."""

    @property
    def corrupt_folder(self) -> str:
        folder = self.transport_options.get("corrupt_folder")
        if not folder:
            folder = os.path.join(os.path.dirname(self.processed_folder), CORRUPT_FOLDER)
        return folder

    def _put(self, queue, payload, **kwargs):
        """Put a message on ``queue``: written whole under a hidden name, then renamed."""
        filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, filename)
        # A leading dot: no reader's name pattern ("<stamp>_<uuid>.<queue>.msg") matches it.
        temporary = os.path.join(self.data_folder_out, f".{filename}.tmp")
        data = str_to_bytes(dumps(payload))
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise ChannelError(f"Cannot add file {filename!r} to directory") from exc

    def _get(self, queue):
        """The next whole message of ``queue``; torn or corrupt files are set aside."""
        wanted = f"{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if filename.startswith(".") and filename.endswith(".tmp"):
                _remove_if_stale(os.path.join(self.data_folder_in, filename))
                continue
            if filename.partition(".")[2] != wanted:
                continue
            source = os.path.join(self.data_folder_in, filename)
            if _still_being_written(source):
                continue
            claimed = os.path.join(self.processed_folder, filename)
            try:
                os.rename(source, claimed)
            except OSError:
                continue  # another worker claimed it first, or it vanished
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
                message = loads(bytes_to_str(payload))
                if not isinstance(message, dict) or any(k not in message for k in ENVELOPE_KEYS):
                    raise ValueError("not a message envelope (no body and properties)")
            except (OSError, ValueError, UnicodeDecodeError) as exc:
                self._set_aside(claimed, queue, exc)
                continue
            if not self.store_processed:
                with contextlib.suppress(OSError):
                    os.remove(claimed)
            return message
        raise Empty()

    def _set_aside(self, path: str, queue: str, error: BaseException) -> None:
        folder = self.corrupt_folder
        name = os.path.basename(path)
        size = _size(path)
        reason = f"{type(error).__name__}: {error}"
        try:
            os.makedirs(folder, exist_ok=True)
            moved = os.path.join(folder, name)
            os.rename(path, moved)
            Path(moved + ".reason").write_text(f"{reason}\n", encoding="utf-8")
        except OSError as exc:
            # Could not keep it: drop it rather than read it again forever.
            moved = f"(not kept: {exc})"
            with contextlib.suppress(OSError):
                os.remove(path)
        logger.error(
            "broker: message %s on queue %s is torn or corrupt (%s bytes, %s); set aside as %s",
            name,
            queue,
            size,
            reason,
            moved,
        )

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        # Stock kombu creates a missing exchange table with "wb" and only then locks it,
        # so a second worker starting at the same instant can open the new, still empty
        # file, lock it first and fail on its empty JSON (seen with two benchmark workers
        # starting together: "the worker did not start", JSONDecodeError). Here the file
        # is created without truncation and read, changed and rewritten under one lock;
        # an empty table is an empty list.
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with file.open("ab+", buffering=0) as f_obj:
                filesystem.lock(f_obj, filesystem.LOCK_EX)
                try:
                    f_obj.seek(0)
                    text = bytes_to_str(f_obj.read()).strip()
                    try:
                        table = (
                            [filesystem.exchange_queue_t(*row) for row in loads(text)]
                            if text
                            else []
                        )
                    except ValueError as exc:
                        logger.error(
                            "broker: exchange table %r was unreadable (%s); rebuilt", exchange, exc
                        )
                        table = []
                    if binding not in table:
                        table.insert(0, binding)
                        f_obj.seek(0)
                        f_obj.truncate()
                        f_obj.write(str_to_bytes(dumps(table)))
                finally:
                    filesystem.unlock(f_obj)
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc

    def get_table(self, exchange):
        # A damaged exchange table must not take the worker down either: no
        # bindings means the broadcast reaches nobody, which the status page shows.
        try:
            return super().get_table(exchange)
        except ValueError as exc:
            logger.error("broker: exchange table %r is unreadable (%s); ignored", exchange, exc)
            return []


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Use this transport for every ``filesystem://`` broker URL in this process."""
    TRANSPORT_ALIASES["filesystem"] = "portal.broker:Transport"
    _transport_cache.pop("filesystem", None)


def _still_being_written(path: str) -> bool:
    """True while another process holds the file's lock, or it is empty and brand new."""
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            stat = os.fstat(f.fileno())
    except OSError:
        return False  # gone already: the rename will say so
    return stat.st_size == 0 and time() - stat.st_mtime < FRESH_EMPTY_SECONDS


def _remove_if_stale(path: str) -> None:
    with contextlib.suppress(OSError):
        if time() - os.stat(path).st_mtime > STALE_TEMPORARY_SECONDS:
            os.unlink(path)


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


@dataclass
class SetAside:
    """A broker message file moved aside as torn or corrupt."""

    name: str
    queue: str
    size: int
    at: datetime.datetime
    reason: str


def corrupt_messages(broker_dir: Path, limit: int = 10) -> tuple[int, list[SetAside]]:
    """How many messages were set aside under ``broker_dir/corrupt``, and the newest few."""
    folder = Path(broker_dir) / CORRUPT_FOLDER
    try:
        files = [p for p in folder.iterdir() if p.name.endswith(".msg")]
    except OSError:
        return 0, []
    newest = []
    for path in sorted(files, key=_mtime, reverse=True)[:limit]:
        try:
            reason = path.with_name(path.name + ".reason").read_text(encoding="utf-8").strip()
        except OSError:
            reason = "unknown"
        newest.append(
            SetAside(
                name=path.name,
                queue=path.name.partition(".")[2].removesuffix(".msg"),
                size=_size(str(path)) or 0,
                at=datetime.datetime.fromtimestamp(_mtime(path), tz=datetime.UTC),
                reason=reason,
            )
        )
    return len(files), newest


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
