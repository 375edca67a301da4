"""The durable store: SQLAlchemy 2 tables, engine set-up and migrations."""

from .db import Store, open_store

__all__ = ["Store", "open_store"]
