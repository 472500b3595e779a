"""Storage: table schemas, coercion, the Parquet dataset, sync state and the write lock."""

from deliverypulse.store.lock import DatasetLock
from deliverypulse.store.parquet import ParquetStore
from deliverypulse.store.schemas import SCHEMA_VERSION, STREAMS, TABLES, TableSpec, spec_for
from deliverypulse.store.state import SyncState

__all__ = [
    "SCHEMA_VERSION",
    "STREAMS",
    "TABLES",
    "DatasetLock",
    "ParquetStore",
    "SyncState",
    "TableSpec",
    "spec_for",
]
