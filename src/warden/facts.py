"""Facts: read-only lookups a policy may consult (``facts.chargeback_last_180d``).

A fact provider is a function registered under a name. It receives a `FactQuery` (the
agent, tool, run, arguments and context of the call) and returns a value. Results are
cached per run, keyed by the provider's declared `keys` (argument or context names whose
values change the answer). A provider that raises, or does not answer within its
timeout, fails the decision closed (W-POL-104).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Protocol, cast

from warden.errors import ConfigError

__all__ = [
    "FactError",
    "FactProvider",
    "FactQuery",
    "FactRegistry",
    "FactView",
    "UnknownName",
    "fact",
]


class UnknownName(KeyError):
    """A condition read a name that is no argument, context value or fact."""

    def __str__(self) -> str:
        name = self.args[0]
        shown = name if isinstance(name, str) and len(name) <= 80 else type(name).__name__
        return f"no argument, context value or fact named {shown!r}"


class FactError(Exception):
    """A fact provider failed or timed out."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FactQuery:
    """What a fact provider is asked about."""

    agent: str
    tool: str
    run_id: str
    args: Mapping[str, Any]
    context: Mapping[str, Any]

    def value(self, key: str) -> Any:
        """An argument, else a context value, else None."""
        if key in self.args:
            return self.args[key]
        return self.context.get(key)


@dataclass(frozen=True, kw_only=True, slots=True)
class FactProvider:
    name: str
    fn: Callable[[FactQuery], Any]
    keys: tuple[str, ...] = ()
    """Argument or context names whose values the answer depends on (the cache key)."""
    timeout_s: float = 2.0


class FactRegistry:
    """The fact providers one gate may call."""

    def __init__(self) -> None:
        self._providers: dict[str, FactProvider] = {}
        self._pool: ThreadPoolExecutor | None = None

    def add(self, provider: FactProvider) -> None:
        if provider.name in self._providers:
            raise ConfigError("W-PRJ-004", f"fact provider {provider.name!r} is registered twice")
        self._providers[provider.name] = provider

    def register(
        self,
        name: str,
        fn: Callable[[FactQuery], Any],
        *,
        keys: tuple[str, ...] | list[str] = (),
        timeout_s: float = 2.0,
    ) -> None:
        self.add(FactProvider(name=name, fn=fn, keys=tuple(keys), timeout_s=timeout_s))

    def provider(
        self, name: str, *, keys: tuple[str, ...] | list[str] = (), timeout_s: float = 2.0
    ) -> Callable[[Callable[[FactQuery], Any]], Callable[[FactQuery], Any]]:
        """Decorator form of `register`."""

        def wrap(fn: Callable[[FactQuery], Any]) -> Callable[[FactQuery], Any]:
            self.register(name, fn, keys=keys, timeout_s=timeout_s)
            return fn

        return wrap

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def get(self, name: str) -> FactProvider | None:
        return self._providers.get(name)

    def names(self) -> list[str]:
        return sorted(self._providers)

    def fetch(self, name: str, query: FactQuery, cache: dict[Any, Any]) -> Any:
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownName(name)
        key = (name, *(_hashable(query.value(k)) for k in provider.keys))
        if key in cache:
            return cache[key]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="warden-fact")
        future = self._pool.submit(provider.fn, query)
        try:
            value = future.result(timeout=provider.timeout_s)
        except FutureTimeout:
            future.cancel()
            raise FactError(
                f"fact {name!r} did not answer within {provider.timeout_s:g}s"
            ) from None
        except Exception as exc:
            raise FactError(f"fact {name!r} failed: {type(exc).__name__}: {exc}") from exc
        cache[key] = value
        return value

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _hashable(value: Any) -> Any:
    if isinstance(value, dict | list):
        return repr(cast(object, value))
    return value


class _Call(Protocol):
    @property
    def agent(self) -> str: ...
    @property
    def tool(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def context(self) -> Mapping[str, Any]: ...


class _Caches(Protocol):
    def fact_cache(self, run_id: str) -> dict[Any, Any]: ...


class FactView(Mapping[str, Any]):
    """``facts`` in a condition: given values first, then registered providers.

    The query and the run's cache are only built when a provider is actually asked. The
    view remembers what it served (`served`, given values included) and which lookups
    failed (`failed`: the provider's error, or None for a name nothing provides), so a
    decision can record the facts it read and a replay can answer with the same values.
    """

    __slots__ = ("_args", "_caches", "_call", "_given", "_registry", "failed", "served")

    def __init__(
        self,
        registry: FactRegistry | None,
        call: _Call,
        args: Mapping[str, Any],
        caches: _Caches,
        given: Mapping[str, Any] | None = None,
    ) -> None:
        self._registry = registry
        self._call = call
        self._args = args
        self._caches = caches
        self._given = given or {}
        self.served: dict[str, Any] = {}
        """Name -> value of every fact this view handed out."""
        self.failed: dict[str, str | None] = {}
        """Name -> why its lookup failed (None: no such fact)."""

    def __getitem__(self, name: str) -> Any:
        given = self._given
        if name in given:
            value = given[name]
            self.served[name] = value
            return value
        return self._provide(name)

    def _provide(self, name: str) -> Any:
        """Ask the registered provider (through the run's cache); remember the answer, or
        why there was none."""
        if self._registry is None or name not in self._registry:
            self.failed[name] = None
            raise UnknownName(name)
        call = self._call
        query = FactQuery(
            agent=call.agent,
            tool=call.tool,
            run_id=call.run_id,
            args=self._args,
            context=call.context,
        )
        try:
            value = self._registry.fetch(name, query, self._caches.fact_cache(call.run_id))
        except FactError as exc:
            self.failed[name] = str(exc)
            raise
        self.served[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        names = set(self._given)
        if self._registry is not None:
            names.update(self._registry.names())
        return iter(sorted(names))

    def __len__(self) -> int:
        return len(list(iter(self)))

    def __contains__(self, name: object) -> bool:
        return name in self._given or (self._registry is not None and name in self._registry)


def fact(
    name: str | None = None, *, keys: tuple[str, ...] | list[str] = (), timeout_s: float = 2.0
) -> Callable[[Callable[[FactQuery], Any]], FactProvider]:
    """Declare a fact provider in a module listed in warden.yaml::

    @warden.fact("chargeback_last_180d", keys=["customer_id"])
    def chargeback(q: FactQuery) -> bool: ...
    """

    def wrap(fn: Callable[[FactQuery], Any]) -> FactProvider:
        return FactProvider(name=name or fn.__name__, fn=fn, keys=tuple(keys), timeout_s=timeout_s)

    return wrap
