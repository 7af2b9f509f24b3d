"""OpenAI-compatible chat completions, through the official ``openai`` SDK.

One adapter serves OpenAI, Azure OpenAI and any server that speaks the protocol at a base
URL: vLLM, Ollama, a LiteLLM proxy. The SDK retries rate limits, timeouts, connection
failures and server errors with exponential backoff and honours Retry-After; this module
translates messages both ways and turns what is left after the retries into `ModelError`:

    W-MDL-002  HTTP 429 on every attempt                     retryable
    W-MDL-003  no answer within ``timeout_s`` (or HTTP 408)  retryable
    W-MDL-001  no connection, or HTTP 5xx                    retryable
    W-MDL-004  any other HTTP 4xx: key, model, request       not retryable
    W-MDL-005  an answer that is not a chat completion       not retryable

Messages name the model and base URL and quote the provider's own words; never a key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

import openai
from openai.types import CompletionUsage
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
    ChatCompletionMessageToolCallUnion,
)

from warden.models.base import Message, ModelRequest, ModelTurn, Role, ToolSpec, ToolUse, Usage
from warden.models.headers import run_headers
from warden.models.sdk import SDKModel

__all__ = ["OpenAIModel"]

_NEW_TOKEN_LIMIT = frozenset({"openai", "azure"})
"""Providers that take ``max_completion_tokens``; compatible servers take ``max_tokens``."""


class OpenAIModel(SDKModel):
    """A model behind OpenAI's chat completions protocol, with tool calls.

    `model` is the id the server knows (for Azure: the deployment). `provider` names the
    provider in the price list, so a model served by a proxy can be priced as the model it
    is. OpenAI and Azure get the token limit as ``max_completion_tokens``, other servers
    as ``max_tokens``, which is what they read. A ready `client` is used as it is (its own
    base URL, key, timeout and retries); it cannot be combined with `base_url`, `api_key`
    or `default_headers`. Close the model (or use it in a ``with``) to close its client.
    """

    _sdk = openai
    _answer = "a chat completion"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        provider: str = "openai",
        default_headers: Mapping[str, str] | None = None,
        client: openai.OpenAI | None = None,
    ) -> None:
        if client is not None and (base_url or api_key or default_headers):
            raise TypeError("pass either a ready client or base_url/api_key/default_headers")
        self._model = model
        self._provider = provider
        self._owns_client = client is None
        self._client = client or openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers=default_headers,
        )

    @classmethod
    def azure(
        cls,
        deployment: str,
        *,
        endpoint: str,
        api_version: str,
        api_key: str | None = None,
        azure_ad_token_provider: Callable[[], str] | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        default_headers: Mapping[str, str] | None = None,
    ) -> OpenAIModel:
        """A deployment on Azure OpenAI; the key comes from `api_key`, an Entra ID token
        provider, or ``AZURE_OPENAI_API_KEY``."""
        client = openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token_provider=azure_ad_token_provider,
            timeout=timeout_s,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        model = cls(deployment, provider="azure", client=client)
        model._owns_client = True
        return model

    @property
    def name(self) -> str:
        return self._model

    @property
    def provider(self) -> str:
        return self._provider

    def complete(self, request: ModelRequest) -> ModelTurn:
        new_limit = self._provider in _NEW_TOKEN_LIMIT
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=[_wire_message(m) for m in request.messages],
                tools=[_wire_tool(t) for t in request.tools] if request.tools else openai.omit,
                temperature=request.temperature,
                max_completion_tokens=request.max_tokens if new_limit else openai.omit,
                max_tokens=openai.omit if new_limit else request.max_tokens,
                extra_headers=run_headers(request),
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        except json.JSONDecodeError as exc:
            raise self._unreadable(f"it is not JSON ({exc})") from exc
        try:
            return _turn(response)
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            raise self._unreadable(str(exc)) from exc

    def __repr__(self) -> str:
        return f"OpenAIModel({self._model!r}, provider={self._provider!r}, at {self._where()})"

    def _label(self) -> str:
        return self._provider

    def _detail(self, exc: Any) -> str:
        """The provider's own error message (the SDK keeps the ``error`` object as the body)."""
        body = exc.body
        message = (
            cast(Mapping[str, object], body).get("message") if isinstance(body, dict) else None
        )
        if isinstance(message, str) and message:
            return message
        return exc.response.text[:500] or exc.message


# --- to the wire ----------------------------------------------------------------------


def _wire_message(message: Message) -> ChatCompletionMessageParam:
    match message.role:
        case Role.SYSTEM:
            return {"role": "system", "content": message.content}
        case Role.USER:
            return {"role": "user", "content": message.content}
        case Role.ASSISTANT:
            wire: ChatCompletionAssistantMessageParam = {
                "role": "assistant",
                # content may only be null on a message that calls tools
                "content": message.content if message.content or not message.tool_calls else None,
            }
            if message.tool_calls:
                wire["tool_calls"] = [_wire_call(c) for c in message.tool_calls]
            return wire
        case Role.TOOL:
            if message.tool_call_id is None:
                raise ValueError("a tool message needs the tool_call_id of the call it answers")
            return {
                "role": "tool",
                "tool_call_id": message.tool_call_id,
                "content": message.content,
            }


def _wire_call(call: ToolUse) -> ChatCompletionMessageFunctionToolCallParam:
    """A call as the model made it: its own text when there is one (even if malformed)."""
    arguments = call.raw or json.dumps(dict(call.arguments or {}))
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": arguments},
    }


def _wire_tool(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": dict(tool.parameters),
        },
    }


# --- from the wire ----------------------------------------------------------------------


def _turn(response: ChatCompletion) -> ModelTurn:
    """The turn in `response`; AttributeError, TypeError ... when it is not the protocol."""
    answer = cast(object, response)
    if isinstance(answer, str):  # the SDK hands back a body that is not JSON as text
        raise TypeError(f"it is text, not JSON: {answer[:80]!r}")
    if not isinstance(answer, ChatCompletion):
        raise TypeError(f"it is a JSON {type(answer).__name__}, not an object")
    if not response.choices:
        raise ValueError("it has no choices")
    choice = response.choices[0]
    message = choice.message
    return ModelTurn(
        text=message.content or message.refusal or "",
        tool_calls=tuple(_tool_use(c) for c in message.tool_calls or ()),
        usage=_usage(response.usage),
        model=response.model or "",
        stop_reason=choice.finish_reason or "",
    )


def _tool_use(call: ChatCompletionMessageToolCallUnion) -> ToolUse:
    if call.type == "custom":
        return ToolUse(
            id=call.id,
            name=call.custom.name,
            arguments=None,
            raw=call.custom.input,
            error="a custom tool call, not a function call",
        )
    raw = call.function.arguments
    try:
        parsed: Any = json.loads(raw)
    except ValueError as exc:
        return ToolUse(
            id=call.id,
            name=call.function.name,
            arguments=None,
            raw=raw,
            error=f"the arguments are not valid JSON: {exc}",
        )
    if not isinstance(parsed, dict):
        return ToolUse(
            id=call.id,
            name=call.function.name,
            arguments=None,
            raw=raw,
            error=f"the arguments are JSON but not an object: {raw[:80]}",
        )
    return ToolUse(
        id=call.id, name=call.function.name, arguments=cast(dict[str, Any], parsed), raw=raw
    )


def _usage(usage: CompletionUsage | None) -> Usage:
    """Usage; OpenAI's prompt tokens already include the cached ones."""
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_input_tokens=cached or 0,
    )
