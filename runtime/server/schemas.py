"""The bodies `langtrim serve` takes and returns, as pydantic models: the HTTP edge's contract.

Request models copy the field names of the APIs clients already speak (text-embeddings-inference's
/embed, OpenAI's /v1/embeddings) and are strict: "true" is not a boolean and 1 is not a string, so a
client bug shows as a 422 instead of a silently different request. Unknown fields are ignored, as those
APIs do. The OpenAPI document (`openapi`) is generated from these models.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class EmbedRequest(_Body):
    """text-embeddings-inference's /embed body."""

    inputs: str | list[str]
    normalize: bool = True
    truncate: bool | None = None  # None: the server's ServerLimits.auto_truncate
    prompt_name: str | None = None  # one of the bundle's prompts, e.g. "query" for multilingual-e5


class OpenAIEmbeddingRequest(_Body):
    """OpenAI's /v1/embeddings body; token-id arrays as `input` are not supported."""

    input: str | list[str]
    model: str | None = None  # echoed back; the server has one model
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None  # must equal the model's: the vectors are not shortened
    user: str | None = None


class ClassifyRequest(_Body):
    inputs: str | list[str]
    truncate: bool | None = None
    prompt_name: str | None = None


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # str: base64 of little-endian float32, as OpenAI's clients decode it


class OpenAIUsage(BaseModel):
    prompt_tokens: int  # tokens the model saw, special tokens included, after truncation
    total_tokens: int


class OpenAIEmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int  # Unix seconds: when the bundle was packed
    owned_by: str = "langtrim"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


class OpenAIErrorDetail(BaseModel):
    message: str  # what went wrong and what to do: what OpenAI's clients show
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error object, the shape of every error under /v1/."""

    error: OpenAIErrorDetail


class LabelScore(BaseModel):
    label: str
    score: float


class ErrorBody(BaseModel):
    error: str  # what went wrong, short and stable
    detail: str  # the specific problem and what to do about it


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Info(BaseModel):
    """GET /info: what the bundle is, so a client can check it talks to the model it expects."""

    model: str
    description: str
    task: str
    languages: list[str]
    vocab: dict[str, int]
    quantization: dict[str, str]
    optimization: str
    pooling: str
    normalize: bool
    max_length: int
    dimension: int | None
    prompts: dict[str, str]
    labels: list[str]
    parity: dict[str, Any] | None
    bundle_format: int
    bundle_langtrim_version: str
    langtrim_version: str
    limits: dict[str, int | bool]
    batching: bool
