"""YAML that remembers where every value came from.

Manifests, policies, projects and policy tests are YAML a user wrote, so every error about
them must name the file, the line and the field. `load_yaml` parses with PyYAML's safe
loader, keeps the line of every mapping key and list item, and refuses duplicate keys
(which plain YAML loaders silently resolve to the last one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import ValidationError

from warden.errors import ConfigError

__all__ = [
    "YamlDoc",
    "config_error_from_validation",
    "load_yaml",
    "parse_yaml",
]

Loc = tuple[str | int, ...]

try:  # the C loader is several times faster; fall back when libyaml is absent
    _Loader: type[yaml.SafeLoader] = cast(type[yaml.SafeLoader], yaml.CSafeLoader)
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


@dataclass(frozen=True, kw_only=True, slots=True)
class YamlDoc:
    """A parsed YAML document and the line of each of its values."""

    file: str
    """The path as the user named it (relative where possible)."""
    data: Any
    """Plain Python values: dicts, lists, str, int, float, bool, None."""
    lines: Mapping[Loc, int]
    """1-based line of the value at each path; the root is at ``()``."""
    text: str
    """The source, for content hashes."""

    def mapping(self) -> dict[str, Any] | None:
        """The document as a mapping, or None when it is not one."""
        data: Any = self.data
        return cast(dict[str, Any], data) if isinstance(data, dict) else None

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of the value at `loc`, or of its nearest ancestor that has one."""
        path = tuple(loc)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def error(
        self,
        code: str,
        message: str,
        loc: Sequence[str | int] = (),
        *,
        hint: str | None = None,
        cls: type[ConfigError] = ConfigError,
    ) -> ConfigError:
        """A config error pointing at the value at `loc`."""
        field = ".".join(str(p) for p in loc) or None
        return cls(code, message, file=self.file, line=self.line_of(loc), field=field, hint=hint)


def load_yaml(path: Path | str, *, display: str | None = None) -> YamlDoc:
    """Read and parse a YAML file; errors name the file and line (W-CFG-001..003)."""
    path = Path(path)
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("W-CFG-001", f"cannot read the file: {exc}", file=shown) from exc
    return parse_yaml(text, file=shown)


def parse_yaml(text: str, *, file: str) -> YamlDoc:
    """Parse YAML text that came from `file`."""
    lines: dict[Loc, int] = {}
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = _build(loader, node, (), lines, file) if node is not None else None
        finally:
            loader.dispose()  # pyright: ignore[reportUnknownMemberType]
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "invalid YAML"
        # a construct left open (a quote, a bracket) is found at the end of the input:
        # point at where it was opened
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in problem:
            mark = exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError("W-CFG-002", f"not valid YAML: {problem}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError("W-CFG-002", f"not valid YAML: {exc}", file=file) from exc
    return YamlDoc(file=file, data=data, lines=lines, text=text)


def _build(
    loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str
) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key: Any = loader.construct_object(key_node, deep=True)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "W-CFG-004",
                    "mapping keys must be plain scalars",
                    file=file,
                    line=key_node.start_mark.line + 1,
                )
            if key in out:
                raise ConfigError(
                    "W-CFG-003",
                    f"duplicate key {key!r}",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    field=".".join(str(p) for p in (*loc, str(key))),
                )
            child = (*loc, str(key))
            out[key] = _build(loader, value_node, child, lines, file)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(loader, item, (*loc, i), lines, file) for i, item in enumerate(node.value)]
    value: Any = loader.construct_object(node, deep=True)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return cast(Any, value)


def config_error_from_validation(
    doc: YamlDoc,
    exc: ValidationError,
    *,
    base: Sequence[str | int] = (),
    cls: type[ConfigError] = ConfigError,
    code: str = "W-CFG-004",
) -> ConfigError:
    """Turn pydantic's first validation error into a ConfigError at its file:line:field.

    `base` is where the validated value sits inside the document.
    """
    errors = exc.errors(include_url=False)
    # a value of a union type fails once per member; the error that went deepest into a
    # member's structure is the one that says what is wrong
    first = max(errors, key=lambda e: len([p for p in e["loc"] if not _is_pydantic_tag(p)]))
    loc = (*base, *(p for p in first["loc"] if not _is_pydantic_tag(p)))
    message = _describe(first)
    more = len(errors) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return doc.error(code, message, loc, cls=cls, hint=_hint(first))


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "none", "list", "dict", "tuple", "set"})


def _is_pydantic_tag(part: object) -> bool:
    # pydantic puts union member names (`str`, `_ApprovalSpec`, `list[str]`) and validator
    # tags into locations; Warden's own field names are snake_case
    if not isinstance(part, str):
        return False
    return (
        part.startswith("function-")
        or "[" in part
        or part in _TYPE_TAGS
        or part.lstrip("_")[:1].isupper()
    )


def _describe(err: Any) -> str:
    kind: str = err["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    value = err.get("input")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{err['msg']} (got {shown})"


def _hint(err: Any) -> str | None:
    kind: str = err["type"]
    if kind == "extra_forbidden":
        return "remove the field, or check its spelling against the reference in docs/"
    if kind == "missing":
        return "add the field"
    return None
