"""Content labels: where each piece of a run's context came from.

Every message the runner puts in front of a model carries a `Label`. The gate sees the
labels of the context a call was proposed in (`ToolCall.content`): a run whose context
holds untrusted text is *tainted*, and policies can read ``run.tainted``. Enforcing which
arguments may come from which content is the provenance stage's job (see
docs/concepts/runner.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Content", "Label", "tainted"]


class Label(StrEnum):
    """Where a piece of context came from, from most to least trusted."""

    SYSTEM = "system"
    """The operator's instructions: the system prompt, the runner's own notes."""
    TASK = "task"
    """The user's task, as the caller that started the run gave it."""
    TOOL = "tool"
    """The output of a tool declared trusted (a database lookup, an internal API)."""
    MODEL = "model"
    """What the model said; it inherits the trust of what the model read."""
    UNTRUSTED = "untrusted"
    """Text from outside: an email body, a web page, a document, an untrusted tool's output."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Content:
    """One labelled piece of a run's context."""

    text: str
    label: Label
    source: str = ""
    """What it is, for people: ``ticket T-1001 body``, ``tool lookup_customer`` ..."""


def tainted(content: tuple[Content, ...] | list[Content]) -> bool:
    """True when any of `content` is untrusted."""
    return any(c.label is Label.UNTRUSTED for c in content)
