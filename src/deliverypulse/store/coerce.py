"""Turns whatever a connector or a notebook hands us into a table's canonical form.

Canonical pandas form: UTC ``datetime64[us]`` timestamps, nullable ``string`` (Arrow-backed),
``Int64``, ``Float64`` and ``boolean`` columns, and Arrow lists of strings
(:data:`LIST_DTYPE`) for list columns, so a loaded table's lists are never turned into ten
million Python objects. Anything that cannot be converted is rejected with a
:class:`DataError` naming the table, column, row and value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa

from deliverypulse.errors import DataError
from deliverypulse.store.schemas import SOURCE, TableSpec

Records: TypeAlias = pd.DataFrame | pa.Table | Iterable[Mapping[str, Any]]

#: The pandas dtype of every list column (``parents``, ``labels``, ``approvers``...).
LIST_DTYPE = pd.ArrowDtype(pa.list_(pa.string()))
_STR_LIST = pa.list_(pa.string())

_TRUE = {True, "true", "True", "TRUE", "1", "yes"}
_FALSE = {False, "false", "False", "FALSE", "0", "no"}


def pandas_dtype(arrow_type: pa.DataType) -> Any:
    """The nullable pandas dtype that holds an arrow type (:data:`LIST_DTYPE` for lists)."""
    if pa.types.is_timestamp(arrow_type):
        return pd.DatetimeTZDtype(unit="us", tz="UTC")
    if pa.types.is_string(arrow_type) or pa.types.is_dictionary(arrow_type):
        return pd.StringDtype()
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_floating(arrow_type):
        return pd.Float64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return LIST_DTYPE
    return np.dtype("O")


def list_chunks(column: Any) -> pa.ChunkedArray:
    """A list column as arrow ``list<string>`` chunks, whichever form it has: Arrow-backed
    (what :func:`deliverypulse.load` and ``Dataset.from_frames`` give; no copy, chunks as they
    are) or Python lists (a frame built by hand). A value that is no list (a bare string, a
    number) counts as missing, as do ``None`` and NaN."""
    if isinstance(column, pa.ChunkedArray | pa.Array):
        array: Any = column
    elif isinstance(getattr(column, "dtype", None), pd.ArrowDtype):
        array = pa.array(column.array)
    else:
        values = [_as_list(value) for value in column]
        array = pa.array(values, type=_STR_LIST)
    if isinstance(array, pa.Array):
        array = pa.chunked_array([array], type=array.type)
    if not (pa.types.is_list(array.type) and pa.types.is_string(array.type.value_type)):
        array = array.cast(_STR_LIST)
    chunked: pa.ChunkedArray = array
    return chunked


def list_array(column: Any) -> pa.ListArray:
    """:func:`list_chunks` as one array (copied only when it has several chunks)."""
    chunked = list_chunks(column)
    if chunked.num_chunks == 1:
        single: pa.ListArray = chunked.chunk(0)
        return single
    combined: pa.ListArray = chunked.combine_chunks()
    return combined


def _as_list(value: Any) -> list[str] | None:
    """One cell of a hand-made list column as a list of strings, or None."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(item) for item in value]
    if isinstance(value, pa.ListScalar):
        items = value.as_py()
        return None if items is None else [str(item) for item in items]
    return None


def list_series(array: pa.Array | pa.ChunkedArray, index: pd.Index | None = None) -> pd.Series:
    """An arrow list array as a :data:`LIST_DTYPE` column (no copy)."""
    if not (pa.types.is_list(array.type) and pa.types.is_string(array.type.value_type)):
        array = array.cast(_STR_LIST)
    return pd.Series(pd.arrays.ArrowExtensionArray(array), index=index, dtype=LIST_DTYPE)


def to_frame(data: Records) -> pd.DataFrame:
    """Any accepted record container as a DataFrame (not yet coerced)."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pa.Table):
        frame: pd.DataFrame = data.to_pandas()
        return frame
    rows = list(data)
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def coerce_frame(
    spec: TableSpec,
    data: Records,
    *,
    source: str | None = None,
    repo: str | None = None,
    keep_extra: bool = False,
) -> pd.DataFrame:
    """Return ``data`` in ``spec``'s canonical pandas form.

    ``source``/``repo`` fill those columns where missing or null. Missing optional columns
    become all-null; extra columns are kept at the end only when ``keep_extra``.
    """
    frame = to_frame(data).reset_index(drop=True)
    n = len(frame)
    defaults = {"source": source, "repo": repo}
    out: dict[str, Any] = {}
    for field in spec.schema:
        name = field.name
        default = defaults.get(name)
        if name not in frame.columns and default is None:
            out[name] = _nulls(field.type, n)  # absent optional column: nothing to convert
            continue
        column = frame[name] if name in frame.columns else pd.Series([None] * n, dtype=object)
        if default is not None:
            column = column.astype(object).where(column.notna(), default)
        out[name] = _convert(spec, field, column)
    result = pd.DataFrame(out, index=pd.RangeIndex(n))
    _check_required(spec, result, frame)
    if keep_extra:
        extra = [c for c in frame.columns if c not in spec.schema.names]
        for name in extra:
            result[name] = frame[name].to_numpy()
    return result


def to_arrow(spec: TableSpec, frame: pd.DataFrame) -> pa.Table:
    """A canonical frame as an arrow table with exactly ``spec.schema``."""
    arrays = []
    for field in spec.schema:
        column = frame[field.name]
        if field.type == SOURCE:
            arrays.append(pa.array(column.astype(object), type=pa.string()).dictionary_encode())
            continue
        if pa.types.is_list(field.type):
            arrays.append(list_array(column).cast(field.type))
            continue
        arrays.append(pa.Array.from_pandas(column, type=field.type))
    return pa.Table.from_arrays(arrays, schema=spec.schema)


def from_arrow(table: pa.Table, *, python_lists: bool = False) -> pd.DataFrame:
    """An arrow table of ours as a canonical pandas frame: strings and lists stay in arrow's
    buffers (no copy, no Python objects).

    ``python_lists``: list columns as Python lists in an ``object`` column instead, the old
    form (kept for ``benchmarks/bench_load.py`` to measure against; nothing else asks for
    it)."""
    index = pd.RangeIndex(table.num_rows)
    columns = {
        field.name: _pandas_column(field.type, column, index, python_lists=python_lists)
        for field, column in zip(table.schema, table.columns, strict=True)
    }
    # copy=False: each column above is a new array or Arrow's own (immutable) buffers, and
    # pandas' default copies every one of them again (a third of the conversion's time).
    return pd.DataFrame(columns, index=index, copy=False)


def _pandas_column(
    arrow_type: pa.DataType, column: pa.ChunkedArray, index: pd.Index, *, python_lists: bool
) -> Any:
    """One column in its canonical pandas form (an array, or a Series on ``index``)."""
    dtype = pandas_dtype(arrow_type)
    if dtype is LIST_DTYPE and not python_lists:
        return list_series(column, index).array
    if dtype is LIST_DTYPE or dtype == np.dtype("O"):
        return pd.Series(column.to_pylist(), index=index, dtype=object)
    if isinstance(dtype, pd.Int64Dtype):
        return _integers(column)
    if pa.types.is_dictionary(arrow_type):
        # Straight to what pandas keeps strings as (large_string): one cast, not two.
        column = column.cast(pa.large_string())
    converted = dtype.__from_arrow__(column)
    if isinstance(converted, pd.arrays.DatetimeArray) and not _writeable(converted):
        # One chunk without nulls comes as a view of arrow's read-only buffer; a frame's
        # timestamps must take ``frame.loc[i, "created_at"] = ...``.
        converted = converted.copy()
    return converted


def _writeable(stamps: Any) -> bool:
    """Whether a DatetimeArray's values may be written (``asi8`` is a view of them)."""
    return bool(stamps.asi8.flags.writeable)


def _integers(column: pa.ChunkedArray) -> pd.arrays.IntegerArray:
    """An integer column as ``Int64``, each chunk's values copied once into one array (pandas'
    own conversion combines the chunks, then copies the values again)."""
    if column.type != pa.int64():
        column = column.cast(pa.int64())
    values = np.zeros(len(column), dtype=np.int64)
    missing = np.zeros(len(column), dtype=bool)
    at = 0
    for chunk in column.chunks:
        size = len(chunk)
        buffer = chunk.buffers()[1]
        if size and buffer is not None:  # an all-null chunk may have no values buffer
            values[at : at + size] = np.frombuffer(
                buffer, dtype=np.int64, count=size, offset=chunk.offset * 8
            )
        if chunk.null_count:  # what lies under a null is never read
            missing[at : at + size] = chunk.is_null().to_numpy(zero_copy_only=False)
        at += size
    return pd.arrays.IntegerArray(values, missing)


def _nulls(arrow_type: pa.DataType, n: int) -> pd.Series:
    """An all-missing column of the pandas dtype that holds ``arrow_type``."""
    dtype = pandas_dtype(arrow_type)
    if dtype is LIST_DTYPE:
        return list_series(pa.nulls(n, _STR_LIST))
    if dtype == np.dtype("O"):
        return pd.Series([None] * n, dtype=object)
    nulls: pd.Series = pd.Series(pd.array([None] * n, dtype=dtype), dtype=dtype)
    return nulls


def _bad(spec: TableSpec, column: str, frame: pd.Series, mask: Any, expected: str) -> DataError:
    position = int(np.flatnonzero(np.asarray(mask))[0])
    value = frame.iloc[position]
    if isinstance(value, np.generic):
        value = value.item()
    count = int(np.asarray(mask).sum())
    more = f" (and {count - 1} more rows)" if count > 1 else ""
    return DataError(
        f"table {spec.name!r}, column {column!r}, row {position}: "
        f"{value!r} is not {expected}{more}",
        table=spec.name,
        column=column,
    )


def _convert(spec: TableSpec, field: pa.Field, column: pd.Series) -> pd.Series:
    kind = field.type
    present = column.notna() if column.dtype != object else column.map(_is_present)
    if pa.types.is_timestamp(kind):
        return _to_timestamp(spec, field.name, column, present)
    if pa.types.is_string(kind) or pa.types.is_dictionary(kind):
        if column.dtype == object:
            column = column.map(lambda v: v if isinstance(v, str) or not _is_present(v) else str(v))
        return column.astype(pd.StringDtype())
    if pa.types.is_integer(kind):
        numbers = pd.to_numeric(column.where(present, None), errors="coerce")
        if bool((present & numbers.isna()).any()):
            raise _bad(spec, field.name, column, present & numbers.isna(), "a whole number")
        whole = numbers.isna() | (numbers == np.floor(numbers.fillna(0)))
        if not bool(whole.all()):
            raise _bad(spec, field.name, column, ~whole, "a whole number")
        return numbers.astype(pd.Int64Dtype())
    if pa.types.is_floating(kind):
        numbers = pd.to_numeric(column.where(present, None), errors="coerce")
        if bool((present & numbers.isna()).any()):
            raise _bad(spec, field.name, column, present & numbers.isna(), "a number")
        return numbers.astype(pd.Float64Dtype())
    if pa.types.is_boolean(kind):
        if isinstance(column.dtype, pd.BooleanDtype) or column.dtype == bool:
            return column.astype(pd.BooleanDtype())
        mapped = column.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
        unknown = present & mapped.isna()
        if bool(unknown.any()):
            raise _bad(spec, field.name, column, unknown, "true or false")
        return mapped.astype(pd.BooleanDtype())
    if pa.types.is_list(kind):
        return _to_list_column(spec, field.name, column)
    raise DataError(f"table {spec.name!r}: unsupported type {kind}", table=spec.name)


def _is_present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and np.isnan(value):
        return False
    return not (value is pd.NaT or value is pd.NA)


def _to_timestamp(spec: TableSpec, name: str, column: pd.Series, present: Any) -> pd.Series:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        converted: pd.Series = column.dt.tz_convert("UTC").dt.as_unit("us")
        return converted
    if pd.api.types.is_datetime64_dtype(column.dtype):
        localized: pd.Series = column.dt.tz_localize("UTC").dt.as_unit("us")
        return localized
    values = column.where(present, None)
    # A bare number is not a timestamp here (epoch seconds or milliseconds? the schema cannot
    # tell): as text it fails ISO 8601 and is reported, as pandas 4 would otherwise guess.
    if pd.api.types.is_numeric_dtype(values.dtype):
        values = values.astype(str).where(present, None)
    elif pd.api.types.is_object_dtype(values.dtype):  # mixed cells: find the numbers
        numeric = values.map(
            lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool)
        )
        values = values.where(~numeric.astype(bool), values.astype(str))
    try:
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    except (TypeError, ValueError):
        parsed = pd.Series(
            [_one_timestamp(v) for v in column], index=column.index, dtype="datetime64[us, UTC]"
        )
    bad = present & parsed.isna()
    if bool(bad.any()):
        raise _bad(spec, name, column, bad, "a timestamp (ISO 8601 or datetime)")
    return parsed.dt.as_unit("us")


def _one_timestamp(value: Any) -> pd.Timestamp | None:
    if not _is_present(value):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _to_list_column(spec: TableSpec, name: str, column: pd.Series) -> pd.Series:
    """A list column as :data:`LIST_DTYPE`: arrow lists are cast (no Python objects), Python
    lists (a hand-made frame, a connector's records) checked value by value."""
    if isinstance(column.dtype, pd.ArrowDtype):
        try:
            return list_series(list_array(column), column.index)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise DataError(
                f"table {spec.name!r}, column {name!r}: {column.dtype} is not a list of "
                f"strings ({error})",
                table=spec.name,
                column=name,
            ) from None
    values = [_to_str_list(spec, name, value) for value in column]
    return list_series(pa.array(values, type=_STR_LIST), column.index)


def _to_str_list(spec: TableSpec, name: str, value: Any) -> list[str] | None:
    if not isinstance(value, (list, tuple, np.ndarray, pa.ListScalar)) and not _is_present(value):
        return None
    listed = _as_list(value)
    if listed is not None or isinstance(value, pa.ListScalar):
        return listed
    raise DataError(
        f"table {spec.name!r}, column {name!r}: {value!r} is not a list of strings",
        table=spec.name,
        column=name,
    )


def _check_required(spec: TableSpec, result: pd.DataFrame, original: pd.DataFrame) -> None:
    for name in ("source", "repo", *spec.required):
        missing = result[name].isna()
        if bool(missing.any()):
            position = int(np.flatnonzero(missing.to_numpy())[0])
            where = "is missing" if name not in original.columns else f"is empty in row {position}"
            raise DataError(
                f"table {spec.name!r}: required column {name!r} {where}",
                table=spec.name,
                column=name,
            )
