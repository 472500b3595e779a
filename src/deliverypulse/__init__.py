"""deliverypulse: measure software delivery from GitHub, GitLab and git, with pandas.

import deliverypulse as dp
ds = dp.load("deliverypulse-data")
ds.deployments.head()
"""

from deliverypulse._version import __version__
from deliverypulse.analysis import Analysis, Finding, analyze
from deliverypulse.collector import RunSummary, collect, run_collect
from deliverypulse.config import Config, load_config
from deliverypulse.connector import (
    Connector,
    Page,
    available_connectors,
    register_connector,
)
from deliverypulse.dataset import Dataset, load
from deliverypulse.dora import (
    MetricOptions,
    Prepared,
    deployment_outcomes,
    lead_times,
    metrics,
    prepare,
    summary,
)
from deliverypulse.errors import (
    AnalysisError,
    APIError,
    AuthError,
    CollectError,
    ConfigError,
    DataError,
    DeliveryPulseError,
    FatalAPIError,
    GraphQLAPIError,
    LockError,
    NotFoundError,
    OptionError,
    RateLimitError,
    RetryableAPIError,
    StorageError,
    UnknownConnectorError,
)
from deliverypulse.linking import caused_by_deployments, link, link_change_requests
from deliverypulse.pseudonyms import pseudonym_key, pseudonymise
from deliverypulse.reporting import report
from deliverypulse.sources import Option, SourceConfig
from deliverypulse.streams import (
    NewestFirst,
    RawPage,
    Runtime,
    Stream,
    StreamRun,
    TextCursor,
    UpdatedAfter,
    WalkCursor,
    Watermark,
)

__all__ = [
    "APIError",
    "Analysis",
    "AnalysisError",
    "AuthError",
    "CollectError",
    "Config",
    "ConfigError",
    "Connector",
    "DataError",
    "Dataset",
    "DeliveryPulseError",
    "FatalAPIError",
    "Finding",
    "GraphQLAPIError",
    "LockError",
    "MetricOptions",
    "NewestFirst",
    "NotFoundError",
    "Option",
    "OptionError",
    "Page",
    "Prepared",
    "RateLimitError",
    "RawPage",
    "RetryableAPIError",
    "RunSummary",
    "Runtime",
    "SourceConfig",
    "StorageError",
    "Stream",
    "StreamRun",
    "TextCursor",
    "UnknownConnectorError",
    "UpdatedAfter",
    "WalkCursor",
    "Watermark",
    "__version__",
    "analyze",
    "available_connectors",
    "caused_by_deployments",
    "collect",
    "deployment_outcomes",
    "lead_times",
    "link",
    "link_change_requests",
    "load",
    "load_config",
    "metrics",
    "prepare",
    "pseudonym_key",
    "pseudonymise",
    "register_connector",
    "report",
    "run_collect",
    "summary",
]
