"""OpenAI-shaped identifiers (time-ordered, like every aibroker id: cursors rely on it)."""

from __future__ import annotations

from aibroker.kit.ids import new_id


def new_file_id() -> str:
    return "file-" + new_id("f")[2:]


def new_batch_id() -> str:
    return new_id("batch")


def token_of(batch_id: str) -> str:
    return batch_id.split("_", 1)[1]


def result_file_id(batch_id: str, kind: str) -> str:
    """The output ("o") / error ("e") file of a batch: fixed by the batch, so a finalization
    run again after a crash rewrites the same object instead of leaving an orphan."""
    return f"file-{token_of(batch_id)}{kind}"


def storage_key(organization_id: str, file_id: str) -> str:
    return f"{organization_id}/files/{file_id}"
