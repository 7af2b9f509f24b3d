"""State stores: where the gate keeps kill switches, budgets, breakers and history.

`open_store` opens a durable one from a path or URL: SQLite (`warden.store.sqlite`) or
PostgreSQL (`warden.store.postgres`, imported only then).
"""

from warden.store.memory import MemoryStore
from warden.store.open import open_store
from warden.store.protocol import DurableStore, StateStore

__all__ = ["DurableStore", "MemoryStore", "StateStore", "open_store"]
