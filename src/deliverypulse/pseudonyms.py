"""People are not the unit: names shown as stable pseudonyms ("person-3f9a2c1d").

DORA's metrics describe teams and services, never individuals, so every output that could
name a person (``deliverypulse metrics``, the report) shows a pseudonym unless asked for
names (``--show-names``, ``show_names=True``). A pseudonym is the HMAC-SHA256 of the name
(trimmed, case-folded: GitHub and GitLab logins ignore case) under a key, its first 8 hex
digits after ``person-``. The same key gives the same pseudonym, so a person's rows can be
followed across tables and runs without showing who it is.

The key (:func:`pseudonym_key`): the environment variable ``DELIVERYPULSE_PSEUDONYM_KEY``
(share it to make pseudonyms agree across datasets and machines); else a random key made once
per dataset and kept in ``_deliverypulse/pseudonym.key`` (so runs on one dataset agree; delete
the file to re-key; a dataset on object storage keeps it there too); else, with no dataset
folder, a random key for this process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deliverypulse.store.coerce import list_array, list_series
from deliverypulse.store.files import write_text_atomic
from deliverypulse.store.location import Location, is_url, resolve

KEY_ENV = "DELIVERYPULSE_PSEUDONYM_KEY"
KEY_FILE = Path("_deliverypulse") / "pseudonym.key"
PREFIX = "person-"
DIGITS = 8
#: Columns that name people, in the tables and the frames derived from them.
PERSON_COLUMNS = ("author", "creator", "approvers", "reviewers", "committer", "assignee")

_process_key = secrets.token_hex(32)


def pseudonym_key(dataset: Path | str | Location | None = None) -> bytes:
    """The key: ``$DELIVERYPULSE_PSEUDONYM_KEY``, else the dataset's own (made on first use),
    else this process's."""
    given = os.environ.get(KEY_ENV, "")
    if given.strip():
        return given.strip().encode()
    if dataset is not None and (isinstance(dataset, Location) or is_url(dataset)):
        return _remote_key(resolve(dataset))
    if dataset is None or not Path(dataset).is_dir():
        return _process_key.encode()
    path = Path(dataset) / KEY_FILE
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if not stored:
        stored = secrets.token_hex(32)
        write_text_atomic(path, stored + "\n")
    return stored.encode()


def _remote_key(location: Location) -> bytes:
    """The key kept with a dataset on object storage (made on first use, like a local one)."""
    if location.local is not None:
        return pseudonym_key(location.local)
    stored = (location.read_bytes(*KEY_FILE.parts) or b"").decode("utf-8", "replace").strip()
    if not stored:
        stored = secrets.token_hex(32)
        location.write_bytes((stored + "\n").encode(), *KEY_FILE.parts)
    return stored.encode()


def _one(name: Any, key: bytes) -> Any:
    if name is None or (not isinstance(name, (list, tuple, np.ndarray)) and bool(pd.isna(name))):
        return name
    if isinstance(name, (list, tuple, np.ndarray)):
        return [_one(item, key) for item in name]
    text = str(name).strip().casefold()
    if not text:
        return name
    digest = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGITS]


@overload
def pseudonymise(names: str, key: bytes | str) -> str: ...
@overload
def pseudonymise(names: pd.Series, key: bytes | str) -> pd.Series: ...  # type: ignore[overload-overlap]
@overload
def pseudonymise(names: Iterable[Any], key: bytes | str) -> list[Any]: ...
def pseudonymise(names: Any, key: bytes | str) -> Any:
    """``names`` as pseudonyms under ``key``: a name, a Series (list cells too) or an iterable.

    Missing values stay missing; the same name (trimmed, any case) under the same key always
    gives the same pseudonym, ``person-`` and 8 hex digits of its HMAC-SHA256."""
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if isinstance(names, str):
        return _one(names, secret)
    if isinstance(names, pd.Series):
        if isinstance(names.dtype, pd.ArrowDtype) and pa.types.is_list(names.dtype.pyarrow_dtype):
            return _list_pseudonyms(names, secret)
        if pd.api.types.is_object_dtype(names.dtype):  # cells may be lists: one at a time
            out = names.map(lambda value: _one(value, secret))
        else:  # each distinct name is hashed once (an author appears on many rows)
            codes, uniques = pd.factorize(names)
            hidden = np.array([_one(name, secret) for name in uniques] + [None], dtype=object)
            out = pd.Series(hidden[codes], index=names.index, dtype=object)  # -1: missing
            out = out.where(codes >= 0, names)
        return out.astype(names.dtype) if isinstance(names.dtype, pd.StringDtype) else out
    return [_one(name, secret) for name in names]


def _list_pseudonyms(names: pd.Series, key: bytes) -> pd.Series:
    """An Arrow-backed list column with every item a pseudonym: each distinct name is hashed
    once, and the lists keep their shape (missing lists stay missing)."""
    lists = list_array(names)
    flat = pc.list_flatten(lists)
    distinct = pc.unique(flat)
    hidden = pa.array([_one(name, key) for name in distinct.to_pylist()], type=pa.string())
    values = hidden.take(pc.index_in(flat, distinct))
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate(([0], np.cumsum(lengths))).astype(np.int32))
    rebuilt = pa.ListArray.from_arrays(offsets, values, mask=lists.is_null())
    return list_series(rebuilt, names.index)


def pseudonymise_frame(
    frame: pd.DataFrame, key: bytes | str, columns: Iterable[str] = PERSON_COLUMNS
) -> pd.DataFrame:
    """A copy of ``frame`` whose person columns (those of ``columns`` it has) are pseudonyms."""
    present = [name for name in columns if name in frame.columns]
    if not present:
        return frame
    return frame.assign(**{name: pseudonymise(frame[name], key) for name in present})


__all__ = [
    "KEY_ENV",
    "KEY_FILE",
    "PERSON_COLUMNS",
    "pseudonym_key",
    "pseudonymise",
    "pseudonymise_frame",
]
