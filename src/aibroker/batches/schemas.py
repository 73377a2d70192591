"""Request bodies of /v1/batches and the multipart body of /v1/files (OpenAPI docs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aibroker.batches.files import PURPOSES

Endpoint = Literal["/v1/chat/completions", "/v1/responses", "/v1/embeddings"]


class BatchCreate(BaseModel):
    """OpenAI's `POST /v1/batches` body."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input_file_id: str = Field(min_length=1, max_length=100, description="A file uploaded with purpose `batch`: JSONL, one request per line.")
    endpoint: Endpoint = Field(description="The route every line calls (each line's `url` must name it).")
    completion_window: Literal["24h"] = Field(description="Lines not run within it are reported as `batch_expired`.")
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=16, description="Up to 16 key-value pairs kept with the batch.")
    output_expires_after: dict[str, Any] | None = Field(
        default=None, description="Accepted for compatibility; output files are kept 30 days.")


FILE_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "purpose"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The file. For `batch`: JSONL, one request per line."},
        "purpose": {"type": "string", "enum": sorted(PURPOSES), "description": "What the file is for; batches read `batch` files."},
    },
}}}}}
