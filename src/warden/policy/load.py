"""Load policy files and folders into a `PolicySet`.

A folder contributes every ``*.yaml`` / ``*.yml`` file in it and below it, in sorted
order, except ``*_test.yaml`` files (those are policy tests). The set's revision is the
content hash of every file's name and text, plus any rules derived from manifests, so the
same policies always give the same revision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from warden.canonical import content_hash
from warden.errors import PolicyError
from warden.policy.evaluate import PolicySet, PolicySource
from warden.policy.model import CompiledPolicy, compile_policy_doc
from warden.yamlsource import YamlDoc, load_yaml, parse_yaml

__all__ = ["is_policy_file", "load_policies", "policy_files", "policy_from_text", "policy_set"]


def is_policy_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and not path.stem.endswith("_test")


def policy_files(paths: Iterable[Path], *, root: Path | None = None) -> list[Path]:
    """Every policy file named, or found under a named folder, in a stable order."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_policy_file(f)))
        elif p.exists():
            found.append(p)
        else:
            raise PolicyError("W-CFG-001", "no such policy file or folder", file=_display(p, root))
    return found


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def load_policies(
    paths: Iterable[Path],
    *,
    root: Path | None = None,
    extra: Sequence[CompiledPolicy] = (),
    extra_sources: Sequence[tuple[str, str]] = (),
    fields: Mapping[str, frozenset[str]] | None = None,
) -> PolicySet:
    """Load policies from files and folders; fail closed when there are none (W-POL-005).

    `extra` are policies derived elsewhere (agent manifests' shorthands), and
    `extra_sources` the (name, text) pairs they came from (the manifests), which enter
    the revision.
    """
    docs = [load_yaml(f, display=_display(f, root)) for f in policy_files(paths, root=root)]
    return policy_set(docs, extra=extra, extra_sources=extra_sources, fields=fields)


def policy_set(
    docs: Sequence[YamlDoc],
    *,
    extra: Sequence[CompiledPolicy] = (),
    extra_sources: Sequence[tuple[str, str]] = (),
    fields: Mapping[str, frozenset[str]] | None = None,
) -> PolicySet:
    compiled = [compile_policy_doc(d, default_id=Path(d.file).stem) for d in docs]
    policies = [*compiled, *extra]
    if not compiled:
        raise PolicyError(
            "W-POL-005",
            "no policy file was found; Warden refuses to decide without a policy",
        )
    seen: dict[str, str] = {}
    for p in policies:
        for r in (*p.rules, *p.redact_rules):
            if r.ref.id in seen:
                raise PolicyError(
                    "W-POL-006",
                    f"rule id {r.ref.id!r} is used twice (first at {seen[r.ref.id]})",
                    file=r.ref.file,
                    line=r.ref.line,
                )
            seen[r.ref.id] = f"{r.ref.file}:{r.ref.line}"
    texts = sorted(
        [PolicySource(name=d.file, text=d.text) for d in docs]
        + [PolicySource(name=n, text=t, kind="manifest") for n, t in extra_sources],
        key=lambda s: (s.name, s.text),
    )
    revision = content_hash([[s.name, s.text] for s in texts])
    return PolicySet(
        policies,
        revision=revision,
        sources=[s.name for s in texts],
        fields=fields,
        texts=texts,
    )


def policy_from_text(text: str, *, file: str = "policy.yaml") -> PolicySet:
    """A policy set from one file's text: handy in tests and notebooks."""
    return policy_set([parse_yaml(text, file=file)])
