"""State stores: where the gate keeps kill switches, budgets, breakers and history."""

from warden.store.memory import MemoryStore
from warden.store.protocol import StateStore

__all__ = ["MemoryStore", "StateStore"]
