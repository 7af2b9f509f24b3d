"""What the two SDK adapters share: their client's lifecycle, naming what they call
without secrets, and turning an SDK's exceptions into W-MDL codes.

The official `openai` and `anthropic` SDKs are built alike: the same exception classes
(``RateLimitError``, ``APITimeoutError``, ``APIConnectionError``, ``APIStatusError``,
``APIResponseValidationError``) under the same names, and a client with ``base_url``,
``max_retries``, ``timeout`` and ``close()``. The adapters subclass `SDKModel` and say
which SDK they use.
"""

from __future__ import annotations

from types import ModuleType, TracebackType
from typing import Any, Self, cast

from warden.errors import ModelError

__all__ = ["SDKModel"]


class SDKModel:
    """The shared half of an SDK adapter (subclasses set `_sdk` and `_answer`)."""

    _sdk: ModuleType
    """The SDK module whose exception classes `_error` maps."""
    _answer: str = "an answer"
    """What a well-formed response is called, for W-MDL-005 messages."""
    _client: Any
    _model: str
    _owns_client: bool

    def _label(self) -> str:
        """How messages name the provider (``openai``, ``azure``, ``anthropic`` ...)."""
        return self._sdk.__name__

    def _detail(self, exc: Any) -> str:
        """The provider's own words from an HTTP error."""
        return str(getattr(exc, "message", exc))

    def close(self) -> None:
        """Close the client's connections, when the client was made here."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _where(self) -> str:
        """The base URL without user info or query: what was called, never a secret."""
        url = self._client.base_url
        return str(url.copy_with(username=None, password=None, query=None)).rstrip("/")

    def _error(self, exc: Exception) -> ModelError:
        """The W-MDL error for an exception the SDK raised after its own retries."""
        sdk = self._sdk
        what = f"{self._label()} model {self._model!r} at {self._where()}"
        retries = f"max_retries={self._client.max_retries}"
        status = cast(int, getattr(exc, "status_code", 0))
        if isinstance(exc, cast(type[Exception], sdk.RateLimitError)):
            message = f"{what}: rate limited (HTTP 429, {retries}): {self._detail(exc)}"
            return ModelError("W-MDL-002", message, retryable=True)
        if isinstance(exc, cast(type[Exception], sdk.APITimeoutError)):
            message = f"{what}: no answer within {self._client.timeout}s ({retries})"
            return ModelError("W-MDL-003", message, retryable=True)
        if isinstance(exc, cast(type[Exception], sdk.APIConnectionError)):
            message = f"{what}: cannot connect ({retries}): {exc.__cause__ or exc}"
            return ModelError("W-MDL-001", message, retryable=True)
        if isinstance(exc, cast(type[Exception], sdk.APIStatusError)):
            detail = self._detail(exc)
            if status == 408:
                message = f"{what}: the server timed out (HTTP 408, {retries}): {detail}"
                return ModelError("W-MDL-003", message, retryable=True)
            if status >= 500:
                message = f"{what}: server error (HTTP {status}, {retries}): {detail}"
                return ModelError("W-MDL-001", message, retryable=True)
            return ModelError("W-MDL-004", f"{what}: refused (HTTP {status}): {detail}")
        if isinstance(exc, cast(type[Exception], sdk.APIResponseValidationError)):
            return self._unreadable(str(exc))
        return ModelError("W-MDL-004", f"{what}: {exc}")

    def _unreadable(self, why: str) -> ModelError:
        what = f"{self._label()} model {self._model!r} at {self._where()}"
        return ModelError("W-MDL-005", f"{what}: the answer is not {self._answer}: {why}")
