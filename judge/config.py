"""Configuration of one LLM judge, as it appears under ``judges:`` in a study's ``kasauti.yaml``."""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

_SECRET_KEYS = {"api_key", "apikey", "key", "token", "authorization", "password", "secret"}


class JudgeConfig(BaseModel):
    """One judge: which model, where, how it is asked, and how hard it may be pushed.

    The API key is never part of the config: ``api_key_env`` names the environment variable
    that holds it. Everything that changes the judge's answer (model, sampling, answer format,
    mode) is part of the ledger key, so changing it re-scores; concurrency, limits, timeouts
    and prices are not.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="Unique judge name, recorded on every judgment.")
    backend: str = Field(default="openai", description="A registered backend: openai, openai_batch, vllm (see judge/backends.py).")
    model: str = Field(min_length=1)
    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL ending in /v1; null = api.openai.com.")
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    mode: Literal["per_item", "per_metric"] = Field(
        default="per_item", description="One call per item scoring all its metrics, or one call per item x metric."
    )
    repeats: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int = Field(default=512, gt=0)
    seed: int | None = None
    logprobs: bool = Field(default=True, description="Ask for token logprobs to get a distribution over the scale.")
    top_logprobs: int = Field(default=5, ge=1, le=20)
    response_format: Literal["auto", "json_schema", "json_object", "none"] = Field(
        default="auto", description="auto: JSON schema, falling back to json_object, then none, if the server refuses."
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra request fields for the server.")
    reask: int = Field(default=1, ge=0, description="Re-asks after an unusable answer before recording it unparseable.")
    concurrency: int = Field(default=16, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, description="Attempts per call on 429, 5xx, timeouts, connection errors.")
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    price_per_1k_prompt_tokens: float | None = Field(default=None, ge=0)
    price_per_1k_completion_tokens: float | None = Field(default=None, ge=0)
    batch_size: int = Field(default=256, ge=1, description="vllm: prompts per LLM.chat batch (answers saved after each).")
    batch_poll_s: float = Field(default=30.0, gt=0, description="openai_batch: seconds between polls of a running batch.")
    batch_requests: int = Field(default=50_000, ge=1, le=50_000, description="openai_batch: most requests per batch.")
    engine_args: dict[str, Any] = Field(default_factory=dict, description="vllm: keyword arguments for vllm.LLM.")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        from .backends import check_backend  # the registry imports this module

        return check_backend(name)

    @model_validator(mode="before")
    @classmethod
    def _no_literal_key(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if str(key).lower() in _SECRET_KEYS:
                    # a custom error: pydantic's own would say only "Extra inputs are not permitted"
                    raise PydanticCustomError("secret_in_study", f"{key}: keys go in the environment: use api_key_env "
                                              "(the name of the environment variable that holds the key), and remove it from this file")
        return data

    @model_validator(mode="after")
    def _no_secret_fields(self) -> JudgeConfig:
        for key in self.extra_body:
            if key.lower() in {"api_key", "authorization"}:
                raise ValueError(f"extra_body.{key}: secrets do not belong in the study; use api_key_env")
        return self

    def call_params(self) -> dict[str, Any]:
        """Everything that changes the answer: part of the ledger key and the `params` column."""
        return {
            "backend": self.backend,
            "model": self.model,
            "mode": self.mode,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "logprobs": self.logprobs,
            "top_logprobs": self.top_logprobs if self.logprobs else None,
            "response_format": self.response_format,
            "extra_body": self.extra_body,
            "reask": self.reask,
        }

    def params_json(self) -> str:
        return json.dumps(self.call_params(), sort_keys=True, ensure_ascii=False)

    @property
    def endpoint(self) -> str:
        """The base URL calls go to."""
        return self.base_url or "https://api.openai.com/v1"

    def api_key(self) -> str:
        """The key from the environment; a placeholder for keyless self-hosted endpoints (see
        :meth:`key_warning`). OpenAI's own API needs a key: a ValueError without one."""
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if (urlsplit(self.endpoint).hostname or "").endswith("openai.com"):
            raise ValueError(f"judge {self.name!r}: set the environment variable {self.api_key_env} to the API key")
        return "unused"

    def key_warning(self) -> str | None:
        """Why no key will be sent, when the variable is unset for a self-hosted endpoint that is
        not on this machine (local servers such as `vllm serve` usually need none)."""
        if self.backend == "vllm" or os.environ.get(self.api_key_env):
            return None
        self.api_key()  # raises for OpenAI's own API
        if urlsplit(self.endpoint).hostname in ("127.0.0.1", "localhost", "::1"):
            return None
        return (f"judge {self.name!r}: the environment variable {self.api_key_env} is not set; calling {self.endpoint} "
                f"without an API key (set {self.api_key_env}, or api_key_env to the variable that holds the key)")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.price_per_1k_prompt_tokens is None and self.price_per_1k_completion_tokens is None:
            return None
        return (prompt_tokens * (self.price_per_1k_prompt_tokens or 0.0)
                + completion_tokens * (self.price_per_1k_completion_tokens or 0.0)) / 1000.0
