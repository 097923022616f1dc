"""The bodies `langtrim serve` takes and returns, as pydantic models: the HTTP edge's contract.

Request models copy the field names, defaults and shapes of the APIs clients already speak:
text-embeddings-inference's (TEI's `router/src/http/types.rs`: /embed, /embed_all, /similarity, /tokenize,
/decode, /predict) and OpenAI's /v1/embeddings. They are strict: "true" is not a boolean and 1 is not a
string, so a client bug shows as a 422 instead of a silently different request. Unknown fields are
ignored, as those APIs do. The OpenAPI document (`openapi`) is generated from these models.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


def _side(value: Any) -> Any:
    """TEI's TruncationDirection accepts "Left"/"left" and "Right"/"right"."""
    return value.lower() if isinstance(value, str) and value in ("Left", "Right") else value


# Which end of a text over max_length a truncation cuts ("left": keep the last tokens).
TruncationDirection = Annotated[Literal["right", "left"], BeforeValidator(_side)]
Texts = str | list[str]


class EmbedRequest(_Body):
    """TEI's /embed body (also POST / of an embedding bundle)."""

    inputs: Texts
    normalize: bool = True
    truncate: bool | None = None  # None: the server's ServerLimits.auto_truncate
    truncation_direction: TruncationDirection = "right"
    prompt_name: str | None = None  # one of the bundle's prompts, e.g. "query" for multilingual-e5
    dimensions: int | None = None  # keep the first `dimensions` values (Matryoshka), then normalize


class EmbedAllRequest(_Body):
    """TEI's /embed_all body: every token's vector, not pooled."""

    inputs: Texts
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    prompt_name: str | None = None


class SimilarityInput(_Body):
    source_sentence: str
    sentences: list[str]


class SimilarityParameters(_Body):
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    prompt_name: str | None = None


class SimilarityRequest(_Body):
    """TEI's /similarity body, which huggingface_hub's `InferenceClient.sentence_similarity` sends."""

    inputs: SimilarityInput
    parameters: SimilarityParameters | None = None


class TokenizeRequest(_Body):
    inputs: Texts
    add_special_tokens: bool = True
    prompt_name: str | None = None


class SimpleToken(BaseModel):
    """One token as TEI's /tokenize shows it; `start`/`stop` are UTF-8 byte offsets into the (prompted) text."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class DecodeRequest(_Body):
    ids: list[int] | list[list[int]]
    skip_special_tokens: bool = True


# TEI's PredictInput: a text, a pair [a, b], or a batch [[a], [a, b], ...]
PredictInput = str | list[str] | list[list[str]]


class PredictRequest(_Body):
    """TEI's /predict body (also POST / of a classifier bundle)."""

    inputs: PredictInput
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    raw_scores: bool = False  # the classifier's logits instead of probabilities
    prompt_name: str | None = None  # langtrim's: TEI's /predict has none


class Prediction(BaseModel):
    score: float
    label: str


class OpenAIEmbeddingRequest(_Body):
    """OpenAI's /v1/embeddings body; token-id arrays as `input` are not supported."""

    input: Texts
    model: str | None = None  # echoed back; the server has one model
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None  # keep the first `dimensions` values, then normalize, as OpenAI's API does
    user: str | None = None


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
    """OpenAI's error object, the shape of every error of the OpenAI routes."""

    error: OpenAIErrorDetail


class ErrorResponse(BaseModel):
    """TEI's error shape, of every error but the OpenAI routes'."""

    error: str  # the specific problem and what to do about it
    error_type: Literal["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class BundleInfo(BaseModel):
    """What langtrim adds to TEI's /info: the bundle, so a client can check it talks to the model it expects."""

    description: str
    task: str
    languages: list[str]
    vocab: dict[str, int]
    quantization: dict[str, str]
    optimization: str
    normalize: bool
    dimension: int | None
    prompts: dict[str, str]
    parity: dict[str, Any] | None
    bundle_format: int
    bundle_langtrim_version: str
    limits: dict[str, int | bool]
    batching: bool
    # The serve-time coverage check (docs/coverage.md): the manifest's thresholds (null for a bundle packed
    # before them: the unknown share alone is checked) and what the server does with uncovered text.
    coverage: dict[str, Any] | None
    on_uncovered: str


class Info(BaseModel):
    """GET /info: TEI's fields, then langtrim's under `langtrim`."""

    model_id: str
    model_sha: str | None = None
    model_dtype: str
    served_model_name: str
    # {"embedding": {"pooling": ...}}, or {"classifier" | "reranker" | "token_classifier": {"id2label", "label2id"}}
    model_type: dict[str, Any]
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None
    max_client_batch_size: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None = None
    docker_label: str | None = None
    langtrim: BundleInfo


class RerankRequest(_Body):
    """TEI's /rerank body: the relevance of each text to the query (a reranker bundle)."""

    query: str
    texts: list[str]
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    raw_scores: bool = False  # the reranker's logit instead of its sigmoid
    return_text: bool = False  # echo each text in its rank


class Rank(BaseModel):
    """One text's place in /rerank's answer, which lists the texts best first, as TEI does."""

    index: int  # the text's position in the request's `texts`
    text: str | None = None  # only with return_text (left out of the JSON otherwise, as TEI)
    score: float


class EntitiesRequest(_Body):
    """langtrim's /entities body (token-classification bundles; TEI has no such route)."""

    inputs: Texts
    truncate: bool | None = None
    truncation_direction: TruncationDirection = "right"
    prompt_name: str | None = None


class EntitySpan(BaseModel):
    """One entity of /entities' answer: `start`/`end` are character (code point) offsets into the text as
    sent, so text[start:end] is the entity (as the transformers pipeline's start/end)."""

    label: str  # the entity's group, without a B-/I- prefix (the pipeline's entity_group)
    score: float  # mean probability of that label over the entity's tokens
    start: int
    end: int
    text: str
