"""From an HTTP request to checked texts, or an `ApiError` that says what is wrong with it.

Three gates, in the order a request meets them: the body's size and JSON syntax (413, 400), its shape
against the pydantic model of the endpoint (422), then the texts against the limits (413) and the model's
prompts (422). Each refusal names the field and what to send instead, in one sentence.
"""

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from langtrim.runtime.server.limits import ApiError, ServerLimits

_Model = TypeVar("_Model", bound=BaseModel)


async def read_json(request: Request, limits: ServerLimits) -> Any:
    """The body parsed as JSON; 413 past max_body_bytes (counted as it arrives), 400 if not JSON.

    The declared Content-Length is checked first, then the bytes as they stream in, so a client that
    lies about the length or sends chunked data cannot make the server hold more than the limit.
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
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise too_big
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ApiError(
            400,
            "invalid JSON",
            f'the body is not JSON ({error}): send a JSON object such as {{"inputs": "a text"}}',
        ) from None


def parse_body(model: type[_Model], data: Any) -> _Model:
    """`data` validated as `model`; 422 with one sentence per problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = dict.fromkeys(_problem(e, data) for e in error.errors(include_url=False))
        raise ApiError(422, "invalid request", "; ".join(problems)) from None


def check_texts(
    inputs: str | list[str], limits: ServerLimits, prompt: str | None, prompts: Mapping[str, str]
) -> list[str]:
    """The request's texts as a list, after the limits (413) and content checks (422)."""
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not texts:
        raise ApiError(422, "invalid request", "inputs is an empty list: send at least one text")
    if len(texts) > limits.max_texts:
        raise ApiError(
            413,
            "too many texts",
            f"the request has {len(texts)} texts; the limit is {limits.max_texts} per request: split it",
        )
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise ApiError(
                413,
                "text too long",
                f"texts[{i}] has {len(text)} characters; the limit is {limits.max_text_chars}: shorten or split it",
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(
                422,
                "invalid request",
                f"texts[{i}] holds a lone surrogate (\\ud800-\\udfff): send valid Unicode",
            ) from None
    if prompt is not None and prompt not in prompts:
        known = ", ".join(map(repr, prompts)) or "none"
        raise ApiError(
            422, "invalid request", f"prompt_name {prompt!r} is not one of this model's prompts ({known})"
        )
    return texts


def _problem(error: Any, data: Any) -> str:
    """One pydantic error as a sentence about the request's field (unions are described as a whole)."""
    if not error["loc"]:
        return f"the body must be a JSON object, got {_json_type(data)}"
    name = str(error["loc"][0])
    if error["type"] == "missing":
        return f"{name} is missing"
    if name not in ("inputs", "input"):
        return f"{name}: {error['msg']}"
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
