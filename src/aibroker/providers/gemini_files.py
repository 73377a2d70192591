"""Gemini's Files API: long audio goes up as a file (resumable upload) and the request names
it (`fileData`) instead of carrying it inline. Audio larger than
AIBROKER_GEMINI_INLINE_AUDIO_BYTES (default 20 MB, Gemini's inline request limit) takes this
path. The file is deleted after the call (Gemini would keep it 48 h)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
import orjson

from aibroker.providers.errors import ProviderBadResponse, ProviderError
from aibroker.providers.upstream import Upstream

CHUNK_BYTES = 8 * 1024 * 1024  # the google-genai SDK's upload chunk
POLL_SECONDS = 0.5
POLL_LIMIT = 120


def inline_limit() -> int:
    return int(os.environ.get("AIBROKER_GEMINI_INLINE_AUDIO_BYTES", str(20 * 1024 * 1024)))


async def _post(http: Upstream, url: str, *, data: bytes, headers: dict[str, str]) -> tuple[int, Any, bytes]:
    try:
        async with http._client().post(url, data=data, headers=headers, timeout=http._timeout()) as response:
            return response.status, response.headers, await response.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise http._transport_error(exc, " (file upload)") from exc


async def upload(http: Upstream, api_key_headers: dict[str, str], content: bytes, mime: str, name: str) -> dict[str, Any]:
    """The File once ACTIVE: start a resumable upload, send the bytes in chunks, finalize."""
    start = {
        **api_key_headers, "content-type": "application/json", "X-Goog-Upload-Protocol": "resumable",
        "X-Goog-Upload-Command": "start", "X-Goog-Upload-Header-Content-Length": str(len(content)),
        "X-Goog-Upload-Header-Content-Type": mime,
    }
    body = orjson.dumps({"file": {"displayName": name, "mimeType": mime, "sizeBytes": len(content)}})
    status, headers, answer = await _post(http, http.base_url + "/upload/v1beta/files", data=body, headers=start)
    if status >= 400:
        raise http._on_error(status, answer, headers)
    url = headers.get("x-goog-upload-url")
    if not url:
        raise ProviderBadResponse(f"{http.name} started no upload (no X-Goog-Upload-URL)", provider=http.name)
    offset, final = 0, None
    while offset < len(content) or final is None:
        piece = content[offset: offset + CHUNK_BYTES]
        last = offset + len(piece) >= len(content)
        command = "upload, finalize" if last else "upload"
        status, headers, answer = await _post(http, url, data=piece, headers={
            "X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset), "content-length": str(len(piece))})
        if status >= 400:
            raise http._on_error(status, answer, headers)
        offset += len(piece)
        if last:
            if headers.get("x-goog-upload-status") != "final":
                raise ProviderBadResponse(f"{http.name} did not finalize the upload", provider=http.name)
            final = orjson.loads(answer).get("file") or {}
    return await _active(http, api_key_headers, final)


async def _active(http: Upstream, headers: dict[str, str], file: dict[str, Any]) -> dict[str, Any]:
    for _ in range(POLL_LIMIT):
        state = file.get("state")
        if state == "ACTIVE" or state is None:
            return file
        if state == "FAILED":
            raise ProviderBadResponse(f"{http.name} could not process the file: {(file.get('error') or {}).get('message')}",
                                      provider=http.name)
        await asyncio.sleep(POLL_SECONDS)  # the upstream processes the file; there is no push
        file = await http.request_json("GET", f"/v1beta/{file['name']}", headers=headers)
    raise ProviderBadResponse(f"{http.name} kept the file processing too long", provider=http.name)


async def delete(http: Upstream, headers: dict[str, str], file: dict[str, Any]) -> None:
    try:
        await http.request_json("DELETE", f"/v1beta/{file['name']}", headers=headers)
    except ProviderError:
        pass  # Gemini expires it after 48 h anyway
