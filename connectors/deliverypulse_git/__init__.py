"""The ``git`` connector: DORA records from a local repository, read with the git CLI.

Deployments come from release-version tags or from first-parent merges onto a deploy branch;
changes from pull-request merges and squash commits on every branch's line (maintenance branches
included); commits with their parents. Specs:
https://git-scm.com/docs/git-log and https://git-scm.com/docs/git-for-each-ref.
"""

from deliverypulse_git.connector import GitConnector, repo_from_remote
from deliverypulse_git.gitlog import GitError

__all__ = ["GitConnector", "GitError", "repo_from_remote"]
