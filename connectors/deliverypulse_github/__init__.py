"""deliverypulse's GitHub connector: deployments with approval gates, pull requests with
reviews, commits, workflow runs and incidents, in few requests.

Registered as ``github`` in the ``deliverypulse.connectors`` entry-point group.
See https://docs.github.com/en/graphql and https://docs.github.com/en/rest.
"""

from deliverypulse_github.connector import GitHubConnector
from deliverypulse_github.settings import Settings, graphql_url

__all__ = ["GitHubConnector", "Settings", "graphql_url"]
