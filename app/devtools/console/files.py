"""Slack's external file upload, for :class:`app.devtools.console.backend.SlackBackend`.

``files.getUploadURLExternal`` hands out an upload URL on the same server (a ``POST`` of the raw
bytes, or a multipart ``file``, answered ``OK - <length>`` as text, like files.slack.com);
``files.completeUploadExternal`` shares the files in the channel/thread as a message with
``files`` (visible to ``conversations.replies``). Shared bytes stay downloadable by id.
"""

from __future__ import annotations

import json
from typing import Any


class FilesMixin:
    """The upload methods; the host class holds ``pending_uploads``, ``files`` and ``messages``."""

    public_url: str
    pending_uploads: dict[str, dict[str, Any]]
    files: dict[str, dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]]

    def next_ts(self, suffix: str = "000100") -> str:  # pragma: no cover - the host's
        raise NotImplementedError

    def next_id(self) -> int:  # pragma: no cover - the host's
        raise NotImplementedError

    def shared_files(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Files shared by ``files.completeUploadExternal`` (with their bytes in ``content``)."""
        return [f for f in self.files.values() if channel is None or f["channel"] == channel]

    def upload_bytes(self, file_id: str, data: bytes) -> bool:
        """The bytes posted to a file's upload URL; False for an unknown file id."""
        pending = self.pending_uploads.get(file_id)
        if pending is None:
            return False
        pending["content"] = data
        return True

    def add_file(self, name: str, content: bytes) -> dict[str, Any]:
        """A file a person uploaded (as a message's ``files`` entry shows it); its bytes are
        served at ``url_private_download`` to the bot token only."""
        file_id = f"F{self.next_id():08d}"
        self.files[file_id] = {
            "id": file_id,
            "name": name,
            "title": name,
            "size": len(content),
            "content": content,
        }
        return self._file_info(file_id)

    def _file_info(self, file_id: str) -> dict[str, Any]:
        record = self.files[file_id]
        info = {k: v for k, v in record.items() if k not in ("content", "channel", "thread_ts")}
        url = f"{self.public_url}files-pri/{file_id}/{record['name']}"
        return {**info, "mimetype": "text/markdown", "url_private": url, "url_private_download": url}

    def file_content(self, file_id: str) -> bytes | None:
        record = self.files.get(file_id)
        return None if record is None else bytes(record["content"])

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p.get("file") or "")
        if file_id not in self.files:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_info(file_id)}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            length = int(p.get("length", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not p.get("filename") or length <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{self.next_id():08d}"
        self.pending_uploads[file_id] = {"filename": p["filename"], "length": length}
        return {"ok": True, "upload_url": f"{self.public_url}upload/v1/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        try:
            items = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files")
        except (KeyError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(items, list) or not items:
            return {"ok": False, "error": "invalid_arguments"}
        channel = p.get("channel_id") or p.get("channels") or None
        thread_ts = p.get("thread_ts") or None
        if channel and channel.startswith("CGONE"):
            return {"ok": False, "error": "channel_not_found"}
        for item in items:
            pending = self.pending_uploads.get(str(item.get("id")))
            if pending is None or "content" not in pending:
                return {"ok": False, "error": "file_not_found"}
            if len(pending["content"]) != pending["length"]:
                return {"ok": False, "error": "file_upload_size_mismatch"}
        shared: list[dict[str, Any]] = []
        for item in items:
            pending = self.pending_uploads.pop(str(item["id"]))
            name = pending["filename"]
            record = {
                "id": str(item["id"]),
                "name": name,
                "title": item.get("title") or name,
                "filetype": name.rsplit(".", 1)[-1] if "." in name else "",
                "size": len(pending["content"]),
                "content": pending["content"],
                "channel": channel,
                "thread_ts": thread_ts,
            }
            self.files[record["id"]] = record
            shared.append(record)
        if channel:
            public = [
                {k: v for k, v in f.items() if k not in ("content", "channel", "thread_ts")} for f in shared
            ]
            message: dict[str, Any] = {
                "type": "message",
                "user": "UBOTLUCY",
                "bot_id": "BBOTLUCY",
                "text": p.get("initial_comment") or "",
                "ts": self.next_ts(),
                "channel": channel,
                "files": public,
                "upload": True,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}
