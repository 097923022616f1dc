"""From an HTTP request to checked texts, or an `ApiError` that says what is wrong with it.

Three gates, in the order a request meets them: the body's size and JSON syntax (413, 400), its shape
against the pydantic model of the endpoint (422), then the texts against the limits (422, as
text-embeddings-inference; an empty batch or text is its 400 "Empty") and the model's prompts (422). Each
refusal names the field and what to send instead, in one sentence.
"""

import asyncio
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from langtrim.runtime.errors import InputError
from langtrim.runtime.server.limits import EMPTY, ApiError, ServerLimits
from langtrim.runtime.server.schemas import Texts
from langtrim.runtime.tokenizing import check_unicode

_Model = TypeVar("_Model", bound=BaseModel)
_TEXT_FIELDS = ("inputs", "input")  # what the request models call their texts


async def read_json(request: Request, limits: ServerLimits) -> Any:
    """The body parsed as JSON; 413 past max_body_bytes (counted as it arrives), 400 if not JSON.

    The declared Content-Length is checked first, then the bytes as they stream in, so a client that
    lies about the length or sends chunked data cannot make the server hold more than the limit; a body
    that takes longer than `body_timeout_seconds` is 408, so a stalled upload cannot hold its connection.
    """
    too_big = ApiError(
        413,
        "body too large",
        f"the request body is larger than {limits.max_body_bytes} bytes: send fewer or shorter texts",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise too_big
    body = bytearray()

    async def receive_all() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                raise too_big

    try:
        await asyncio.wait_for(receive_all(), timeout=limits.body_timeout_seconds)
    except asyncio.TimeoutError:
        raise ApiError(
            408,
            "body timeout",
            f"the request body did not arrive within {limits.body_timeout_seconds} s: send it whole, then wait",
        ) from None
    except ClientDisconnect:
        raise ApiError(
            499, "client disconnected", "the client closed the connection before sending the body"
        ) from None
    try:
        return json.loads(body)
    # ValueError covers JSONDecodeError and integers of more digits than Python converts.
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ApiError(
            400,
            "invalid JSON",
            f'the body is not JSON ({str(error)[:200]}): send a JSON object such as {{"inputs": "a text"}}',
        ) from None


def parse_body(model: type[_Model], data: Any, limits: ServerLimits) -> _Model:
    """`data` validated as `model`; 413 for more texts than the limit, 422 with one sentence per field.

    The texts are counted before validation, so a list of a million items is refused without building a
    million validation errors; each field's problem is described once, so the work stays linear.
    """
    if isinstance(data, dict):
        for name in _TEXT_FIELDS:
            if isinstance(data.get(name), list):
                check_count(name, len(data[name]), limits)
        ids = data.get("ids")
        if isinstance(ids, list) and ids and isinstance(ids[0], list):  # /decode's batch of id lists
            check_count("ids", len(ids), limits)
        inputs = data.get("inputs")
        if isinstance(inputs, dict) and isinstance(inputs.get("sentences"), list):  # /similarity's
            check_count("inputs.sentences", len(inputs["sentences"]) + 1, limits)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first_per_field: dict[object, Any] = {}
        for problem in error.errors(include_url=False):
            first_per_field.setdefault(problem["loc"][0] if problem["loc"] else None, problem)
        sentences = [_problem(problem, data, model) for problem in first_per_field.values()]
        raise ApiError(422, "invalid request", "; ".join(sentences)) from None


def encodable(value: str, field: str) -> str:
    """`value` if it is valid Unicode (JSON escapes can smuggle in a lone surrogate, which cannot be sent back)."""
    try:
        return check_unicode(value, field)
    except InputError as error:
        raise ApiError(422, "invalid request", str(error)) from None


def check_count(field: str, count: int, limits: ServerLimits) -> None:
    """422 for more than max_texts items (TEI's max_client_batch_size), 400 for none."""
    if count > limits.max_texts:
        raise ApiError(
            422,
            "too many texts",
            f"batch size {count} > maximum allowed batch size {limits.max_texts}: split `{field}` "
            "into several requests",
        )
    if count == 0:
        raise ApiError(400, "empty input", f"`{field}` cannot be empty: send at least one text", kind=EMPTY)


def check_texts(
    inputs: str | list[str],
    limits: ServerLimits,
    prompt: str | None,
    prompts: Mapping[str, str],
    field: str = "inputs",
) -> list[str]:
    """The request's texts as a list, after the limits (422) and content checks (400 for an empty text,
    422); `field` is the body's name for them ("inputs", OpenAI's "input"), so an error names what the
    client sent."""
    texts = [inputs] if isinstance(inputs, str) else inputs
    check_count(field, len(texts), limits)
    for i, text in enumerate(texts):
        name = field if isinstance(inputs, str) else f"{field}[{i}]"
        if not text:
            raise ApiError(400, "empty input", f"`{name}` cannot be empty: send a non-empty text", kind=EMPTY)
        if len(text) > limits.max_text_chars:
            raise ApiError(
                422,
                "text too long",
                f"`{name}` must have less than {limits.max_text_chars} characters. Given: {len(text)}: "
                "shorten or split it",
            )
        encodable(text, name)
    if prompt is not None and prompt not in prompts:
        known = ", ".join(map(repr, prompts)) or "none"
        raise ApiError(
            422, "invalid request", f"prompt_name {prompt!r} is not one of this model's prompts ({known})"
        )
    return texts


def _problem(error: Any, data: Any, model: type[BaseModel]) -> str:
    """One pydantic error as a sentence about the request's field (a field of texts is described as a whole)."""
    if not error["loc"]:
        return f"the body must be a JSON object, got {_json_type(data)}"
    name = str(error["loc"][0])
    path = ".".join(map(str, error["loc"]))
    if error["type"] == "missing":
        return f"{path} is missing"
    field = model.model_fields.get(name)
    if field is None or field.annotation != Texts:
        return f"{path}: {error['msg']}"
    value = data[name]
    if isinstance(value, list):
        bad = [item for item in value if not isinstance(item, str)]
        if all(_is_id(v) or (isinstance(v, list) and all(_is_id(i) for i in v)) for v in bad):
            return f"{name} holds token ids, which this server does not take: send the texts as strings"
        index = next(i for i, item in enumerate(value) if not isinstance(item, str))
        return (
            f"{name} must be a string or a list of strings, but {name}[{index}] is {_json_type(value[index])}"
        )
    return f"{name} must be a string or a list of strings, got {_json_type(value)}"


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
