"""POST /v1/moderations: OpenAI's moderation models passed through, and the deterministic
`mock-moderation`. Free, as OpenAI's: admitted, counted and recorded at cost 0."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from aibroker.gateway.formats.schemas import MAX_EMBEDDING_INPUTS, openapi_body
from aibroker.gateway.http import JSONResponse, authenticate, read_json, services, unless_disconnected, validate
from aibroker.gateway.media import MediaGateway
from aibroker.gateway.request_context import call_context

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])

MAX_PARTS = 32  # parts of one multimodal input
OPEN = ConfigDict(extra="allow", strict=True)


class _URL(BaseModel):
    model_config = OPEN

    url: str = Field(min_length=1)


class TextInput(BaseModel):
    model_config = OPEN

    type: Literal["text"]
    text: str


class ImageInput(BaseModel):
    model_config = OPEN

    type: Literal["image_url"]
    image_url: _URL


Part = Annotated[TextInput | ImageInput, Field(discriminator="type")]


class ModerationRequest(BaseModel):
    """OpenAI's moderation request."""

    model_config = OPEN

    input: (
        str
        | Annotated[list[str], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
        | Annotated[list[Part], Field(min_length=1, max_length=MAX_PARTS)]
    ) = Field(description="A string, a list of strings (a result each), or one multimodal input: text and image_url parts.")
    model: str | None = Field(default=None, min_length=1, description="Default omni-moderation-latest; or text-moderation-latest, mock-moderation.")
    feature: str | None = Field(default=None, description="aibroker: the feature (usage type) this call serves.")


@router.post("/moderations", openapi_extra=openapi_body(ModerationRequest))
async def create_moderation(request: Request) -> Response:
    """Classify text (and images) as OpenAI's moderation does: `results[{flagged, categories,
    category_scores, category_applied_input_types}]`, one per input string (a multimodal list
    is one input). OpenAI's models (`omni-moderation-latest`, `text-moderation-latest`) are
    passed through; `mock-moderation` flags by keyword. Free: recorded with cost 0."""
    principal = await authenticate(request)
    body = await read_json(request)
    validate(ModerationRequest, body)
    ctx = call_context(request, principal, "moderations", body)
    answer = await unless_disconnected(request, MediaGateway(services(request).gateway).moderate(ctx, body), ctx)
    return JSONResponse(answer.body, headers=answer.headers(ctx.request_id))
