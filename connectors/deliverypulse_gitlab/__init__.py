"""deliverypulse's GitLab connector (``type = "gitlab"``): deployments with approvals, merged
merge requests, commits, pipelines with test report summaries and incidents, from gitlab.com or
a self-managed instance, through python-gitlab over the core HTTP policy.

- https://docs.gitlab.com/api/rest/
"""

from deliverypulse_gitlab.connector import GitLabConnector

__all__ = ["GitLabConnector"]
