"""Build a runner's model route from ``runner:`` in warden.yaml.

The SDK adapters are imported only when a project names their provider, so a project on
the scripted model needs neither SDK installed.
"""

from __future__ import annotations

import os

from warden.durations import parse_duration
from warden.errors import ProjectError
from warden.models.base import Model
from warden.models.route import ResponseCache, Route
from warden.models.scripted import ScriptedModel
from warden.project import ModelSettings, Project
from warden.runner import DEFAULT_SYSTEM, RunLimits, Runner
from warden.store.protocol import DurableStore

__all__ = ["build_model", "build_route", "build_runner", "response_cache", "runner_limits"]


def build_model(spec: ModelSettings, project: Project) -> Model:
    """One model from its settings; errors name warden.yaml and what to fix."""
    try:
        return _build(spec, project)
    except ProjectError:
        raise
    except Exception as exc:  # the SDK refused its settings (no API key ...)
        raise _error(
            project, f"cannot set up the {spec.provider} model {spec.name!r}: {exc}"
        ) from None


def _build(spec: ModelSettings, project: Project) -> Model:
    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.api_key_env and key is None:
        raise _error(project, f"the environment variable {spec.api_key_env} is not set")
    if spec.provider == "scripted":
        if not spec.script:
            raise _error(project, "a scripted model needs `script:` (a YAML file of turns)")
        return ScriptedModel.load(project.root / spec.script)
    if not spec.name:
        raise _error(project, f"a {spec.provider} model needs `name:`")
    if spec.provider == "openai":
        from warden.models.openai import OpenAIModel

        return OpenAIModel(
            spec.name,
            base_url=spec.base_url,
            api_key=key,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
        )
    if spec.provider == "azure":
        from warden.models.openai import OpenAIModel

        if not spec.base_url or not spec.api_version:
            raise _error(
                project, "an azure model needs `base_url:` (the endpoint) and `api_version:`"
            )
        return OpenAIModel.azure(
            spec.name,
            endpoint=spec.base_url,
            api_version=spec.api_version,
            api_key=key,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
        )
    from warden.models.anthropic import AnthropicModel  # the last provider warden.yaml allows

    return AnthropicModel(
        spec.name,
        base_url=spec.base_url,
        api_key=key,
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
    )


def build_route(project: Project) -> Route:
    """The route ``runner:`` declares (W-PRJ-005 when the project declares none)."""
    settings = project.runner
    if settings is None:
        raise ProjectError(
            "W-PRJ-005",
            "warden.yaml has no `runner:` section, so Warden does not know which model to use",
            file=str(project.file.name),
        )
    return Route(
        models=tuple(build_model(m, project) for m in settings.models),
        min_confidence=settings.min_confidence,
    )


def response_cache(project: Project) -> ResponseCache | None:
    settings = project.runner
    if settings is None or settings.response_cache is None:
        return None
    return ResponseCache(ttl_s=parse_duration(settings.response_cache))


def _error(project: Project, message: str) -> ProjectError:
    return ProjectError(
        "W-PRJ-005", message, file=project.file.name, line=project.runner_line, field="runner"
    )


def runner_limits(project: Project) -> RunLimits:
    """The runner's own per-run limits as ``runner:`` in warden.yaml sets them (the
    defaults without one)."""
    settings = project.runner
    if settings is None:
        return RunLimits()
    return RunLimits(
        max_turns=settings.max_turns,
        max_tokens=settings.max_tokens,
        max_usd=settings.max_usd,
        max_tool_calls=settings.max_tool_calls,
        max_wall_seconds=settings.max_wall_seconds,
    )


def build_runner(
    project: Project,
    store: DurableStore,
    *,
    route: Route | None = None,
    limits: RunLimits | None = None,
) -> Runner:
    """A runner for `project` on `store`, as ``runner:`` in warden.yaml configures it;
    `route` and `limits` replace the configured ones (an eval case's model and limits)."""
    settings = project.runner
    return Runner(
        project.gate(store=store),
        route if route is not None else build_route(project),  # W-PRJ-005 without runner:
        limits=limits if limits is not None else runner_limits(project),
        cache=response_cache(project),
        system=(settings.system if settings is not None else None) or DEFAULT_SYSTEM,
    )
