"""The Gemini Files API for the fake Gemini upstream: resumable upload (start, then upload /
upload-finalize chunks at the announced offsets), GET and DELETE of a file. Files are kept
in memory; generateContent refuses a fileData part naming a file it does not have."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class GeminiFiles:
    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.lock = threading.Lock()
        self.uploads: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}  # "files/<id>" -> File
        self.contents: dict[str, bytes] = {}
        self.deleted: list[str] = []

    def reset(self) -> None:
        with self.lock:
            self.uploads.clear()
            self.files.clear()
            self.contents.clear()
            self.deleted.clear()

    def routes(self) -> list[Route]:
        return [
            Route("/upload/v1beta/files", self.upload, methods=["POST"]),
            Route("/v1beta/files/{file_id}", self.file, methods=["GET", "DELETE"]),
        ]

    def _file(self, file_id: str, meta: dict[str, Any], content: bytes) -> dict[str, Any]:
        return {"name": f"files/{file_id}", "displayName": meta.get("displayName"), "mimeType": meta.get("mimeType"),
                "sizeBytes": str(len(content)), "createTime": "2026-01-01T00:00:00Z", "updateTime": "2026-01-01T00:00:00Z",
                "expirationTime": "2026-01-03T00:00:00Z", "sha256Hash": hashlib.sha256(content).hexdigest(),
                "uri": f"{self.owner.base_url}/v1beta/files/{file_id}", "state": "ACTIVE", "source": "UPLOADED"}

    async def upload(self, request: Request) -> Response:
        upload_id = request.query_params.get("upload_id")
        command = request.headers.get("x-goog-upload-command", "")
        if upload_id is None:  # start: authenticated like any call
            body, _fault, early = await self.owner._admit(request)
            if early is not None:
                return early
            if command != "start" or request.headers.get("x-goog-upload-protocol") != "resumable":
                return self.owner._error(400, "expected a resumable upload start")
            new_id = self.owner._new_id("up")
            with self.lock:
                self.uploads[new_id] = {"meta": (body or {}).get("file") or {}, "data": bytearray(),
                                        "length": int(request.headers.get("x-goog-upload-header-content-length") or -1)}
            url = f"{self.owner.base_url}/upload/v1beta/files?upload_id={new_id}&upload_protocol=resumable"
            return Response(status_code=200, headers={"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"})
        with self.lock:
            state = self.uploads.get(upload_id)
        if state is None:
            return self.owner._error(404, "unknown upload")
        chunk = await request.body()
        if int(request.headers.get("x-goog-upload-offset", "-1")) != len(state["data"]):
            return self.owner._error(400, "wrong X-Goog-Upload-Offset")
        state["data"] += chunk
        if "finalize" not in command:
            return Response(status_code=200, headers={"X-Goog-Upload-Status": "active"})
        content = bytes(state["data"])
        if state["length"] >= 0 and state["length"] != len(content):
            return self.owner._error(400, "the upload's length differs from the announced one")
        file_id = self.owner._new_id("file").replace("_", "")
        record = self._file(file_id, state["meta"], content)
        with self.lock:
            self.files[record["name"]] = record
            self.contents[record["name"]] = content
            del self.uploads[upload_id]
        return JSONResponse({"file": record}, headers={"X-Goog-Upload-Status": "final"})

    async def file(self, request: Request) -> Response:
        _body, _fault, early = await self.owner._admit(request)
        if early is not None:
            return early
        name = f"files/{request.path_params['file_id']}"
        with self.lock:
            record = self.files.get(name)
            if record is not None and request.method == "DELETE":
                del self.files[name]
                self.deleted.append(name)
        if record is None:
            return self.owner._error(404, f"File {name} not found.")
        return JSONResponse({} if request.method == "DELETE" else record)

    def unknown_file(self, body: Any) -> str | None:
        """A fileData part naming one of this server's files that is not (or no longer) here
        (other URIs, e.g. images on the web, are not the Files API's)."""
        mine = f"{self.owner.base_url}/v1beta/files/"
        for content in (body or {}).get("contents") or []:
            for part in content.get("parts") or []:
                uri = (part.get("fileData") or {}).get("fileUri")
                if isinstance(uri, str) and uri.startswith(mine):
                    name = "files/" + str(uri).rsplit("/", 1)[-1]
                    with self.lock:
                        if name not in self.files:
                            return name
        return None
