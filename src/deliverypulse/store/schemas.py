"""The tables of the dataset: fixed, versioned pyarrow schemas and their primary keys.

Every Parquet file carries its table's full schema and ``SCHEMA_VERSION`` in its metadata, so
DuckDB, Polars, Spark and pandas read the dataset with no options. Bump the version whenever a
column changes meaning or type; adding a nullable column at the end is a minor change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = "1.0"

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
INT = pa.int64()
FLOAT = pa.float64()
BOOL = pa.bool_()
STR_LIST = pa.list_(pa.string())
# ``source`` is dictionary-encoded in the files so that it merges cleanly with the hive
# partition directory ``source=<name>`` that pyarrow, DuckDB and Polars all discover.
SOURCE = pa.dictionary(pa.int32(), pa.string())

DEPLOYMENT_STATUSES = (
    "success",
    "failure",
    "error",
    "cancelled",
    "inactive",
    "in_progress",
    "queued",
    "waiting",
    "blocked",
)


@dataclass(frozen=True)
class TableSpec:
    """One table: its schema, primary key and the column its rows are sorted by."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    time_column: str
    required: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)


def _schema(table: str, fields: list[tuple[str, pa.DataType]]) -> pa.Schema:
    base = [pa.field("source", SOURCE, nullable=False), pa.field("repo", STR, nullable=False)]
    return pa.schema(
        base + [pa.field(name, dtype) for name, dtype in fields],
        metadata={
            "deliverypulse.table": table,
            "deliverypulse.schema_version": SCHEMA_VERSION,
        },
    )


DEPLOYMENTS = TableSpec(
    name="deployments",
    schema=_schema(
        "deployments",
        [
            ("deployment_id", STR),
            ("environment", STR),
            ("is_production", BOOL),
            ("sha", STR),
            ("ref", STR),
            ("created_at", TS),
            ("finished_at", TS),
            ("status", STR),
            ("approval_required", BOOL),
            ("approval_requested_at", TS),
            ("approved_at", TS),
            ("approvers", STR_LIST),
            ("is_rollback", BOOL),
            ("url", STR),
            ("creator", STR),
            ("started_by", STR),  # "automation" | "person" | null: what the provider says
            ("updated_at", TS),
        ],
    ),
    key=("source", "repo", "deployment_id"),
    time_column="created_at",
    required=("deployment_id", "created_at", "status"),
)

CHANGES = TableSpec(
    name="changes",
    schema=_schema(
        "changes",
        [
            ("change_id", STR),
            ("number", INT),
            ("title", STR),
            ("author", STR),
            ("is_bot", BOOL),
            ("base_ref", STR),
            ("head_ref", STR),
            ("state", STR),
            ("created_at", TS),
            ("ready_at", TS),
            ("first_commit_at", TS),
            ("first_review_at", TS),
            ("first_approval_at", TS),
            ("merged_at", TS),
            ("closed_at", TS),
            ("updated_at", TS),
            ("merge_sha", STR),
            ("additions", INT),
            ("deletions", INT),
            ("changed_files", INT),
            ("commit_count", INT),
            ("review_count", INT),
            ("approval_count", INT),
            ("approvers", STR_LIST),
            ("labels", STR_LIST),
            ("is_revert", BOOL),
            ("reverts", STR),
            ("is_hotfix", BOOL),
            ("url", STR),
        ],
    ),
    key=("source", "repo", "change_id"),
    time_column="created_at",
    required=("change_id", "created_at"),
)

COMMITS = TableSpec(
    name="commits",
    schema=_schema(
        "commits",
        [
            ("sha", STR),
            ("parents", STR_LIST),
            ("authored_at", TS),
            ("committed_at", TS),
            ("author", STR),
            ("change_id", STR),
            ("subject", STR),
            ("additions", INT),
            ("deletions", INT),
        ],
    ),
    key=("source", "repo", "sha"),
    time_column="committed_at",
    required=("sha",),
)

TEST_RUNS = TableSpec(
    name="test_runs",
    schema=_schema(
        "test_runs",
        [
            ("run_id", STR),
            ("name", STR),
            ("sha", STR),
            ("ref", STR),
            ("event", STR),
            ("status", STR),
            ("conclusion", STR),
            ("created_at", TS),
            ("started_at", TS),
            ("finished_at", TS),
            ("duration_s", FLOAT),
            ("attempt", INT),
            ("tests_total", INT),
            ("tests_failed", INT),
            ("tests_skipped", INT),
            ("url", STR),
        ],
    ),
    key=("source", "repo", "run_id"),
    time_column="created_at",
    required=("run_id", "created_at"),
)

INCIDENTS = TableSpec(
    name="incidents",
    schema=_schema(
        "incidents",
        [
            ("incident_id", STR),
            ("title", STR),
            ("created_at", TS),
            ("resolved_at", TS),
            ("severity", STR),
            ("labels", STR_LIST),
            ("url", STR),
            ("service", STR),
            ("urgency", STR),
            ("status", STR),
            ("caused_by", STR),
            ("correlation_id", STR),
        ],
    ),
    key=("source", "repo", "incident_id"),
    time_column="created_at",
    required=("incident_id", "created_at"),
)

DEPLOYMENT_CHANGES = TableSpec(
    name="deployment_changes",
    schema=_schema(
        "deployment_changes",
        [
            ("deployment_id", STR),
            ("change_id", STR),
            ("sha", STR),
            ("environment", STR),
            ("is_approximate", BOOL),
        ],
    ),
    key=("source", "repo", "deployment_id", "change_id"),
    time_column="deployment_id",
    required=("deployment_id", "change_id"),
)

#: Change types a change request can have (ServiceNow's ``type`` values).
CHANGE_REQUEST_TYPES = ("standard", "normal", "emergency")

#: A change request (ServiceNow ``change_request``), with what its approver rows say. Its key
#: has no ``repo``: ``repo`` is the one repo the service catalogue gives its configuration item
#: (else the instance), so a catalogue edit changes a column, never the row's identity.
CHANGE_REQUESTS = TableSpec(
    name="change_requests",
    schema=_schema(
        "change_requests",
        [
            ("change_request_id", STR),  # the change's number, e.g. CHG0030001
            ("number", STR),
            ("type", STR),  # standard | normal | emergency
            ("state", STR),
            ("approval", STR),
            ("cab_required", BOOL),
            ("cab_at", TS),
            ("opened_at", TS),
            ("approval_requested_at", TS),
            ("approved_at", TS),
            ("rejected_at", TS),
            ("approvers", STR_LIST),
            ("planned_start", TS),
            ("planned_end", TS),
            ("work_start", TS),
            ("work_end", TS),
            ("closed_at", TS),
            ("close_code", STR),
            ("configuration_item", STR),
            ("assignment_group", STR),
            ("title", STR),
            ("url", STR),
            ("references", STR_LIST),  # deployment references found in its text
            ("sys_id", STR),
            ("updated_at", TS),
        ],
    ),
    key=("source", "change_request_id"),
    time_column="opened_at",
    required=("change_request_id",),
)

#: Which change request covered which production deployment (derived by
#: ``deliverypulse.linking.link_change_requests``): ``source``/``repo``/``deployment_id`` name
#: the deployment, ``change_request_source`` the source the change request came from.
DEPLOYMENT_CHANGE_REQUESTS = TableSpec(
    name="deployment_change_requests",
    schema=_schema(
        "deployment_change_requests",
        [
            ("deployment_id", STR),
            ("change_request_id", STR),
            ("link", STR),  # explicit | window
            ("ambiguous", BOOL),
            ("change_request_source", STR),
        ],
    ),
    key=("source", "repo", "deployment_id", "change_request_id"),
    time_column="deployment_id",
    required=("deployment_id", "change_request_id", "link"),
)

#: Where a repo's ``team`` in ``repo_teams`` came from (a source's ``teams`` option).
TEAM_ORIGINS = ("codeowners", "github-teams")

#: The team the code host names for a repo, for repos the catalogue gives none (a source's
#: ``teams`` option): one row per source and repo, ``team`` missing when the host names none
#: (a CODEOWNERS catch-all of people only, no file, no team with write access), so a rerun
#: replaces a team that is gone. ``origin`` is one of :data:`TEAM_ORIGINS`.
REPO_TEAMS = TableSpec(
    name="repo_teams",
    schema=_schema("repo_teams", [("team", STR), ("origin", STR)]),
    key=("source", "repo"),
    time_column="repo",
    required=("origin",),
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        DEPLOYMENTS,
        CHANGES,
        COMMITS,
        TEST_RUNS,
        INCIDENTS,
        DEPLOYMENT_CHANGES,
        CHANGE_REQUESTS,
        DEPLOYMENT_CHANGE_REQUESTS,
        REPO_TEAMS,
    )
}

#: Tables a connector may write (``deployment_changes`` is normally derived by ``link``; a
#: connector may also write it when the provider itself says what a deployment shipped).
STREAMS: tuple[str, ...] = (
    "deployments",
    "changes",
    "commits",
    "test_runs",
    "incidents",
    "change_requests",
    "repo_teams",
)


def spec_for(table: str) -> TableSpec:
    """The spec of ``table``; a clear error for an unknown name."""
    try:
        return TABLES[table]
    except KeyError:
        from deliverypulse.errors import DataError

        raise DataError(
            f"unknown table {table!r}; the tables are {', '.join(TABLES)}", table=table
        ) from None
