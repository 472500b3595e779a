"""deliverypulse's PagerDuty connector (``type = "pagerduty"``): incidents through the REST API
v2 (``GET /incidents``), in creation windows within PagerDuty's six-month limit.

Registered as ``pagerduty`` in the ``deliverypulse.connectors`` entry-point group.

- https://developer.pagerduty.com/api-reference/9d0b4b12e36f9-list-incidents
- https://github.com/PagerDuty/api-schema (``reference/REST/openapiv3.json``)
"""

from deliverypulse_pagerduty.connector import PagerDutyConnector
from deliverypulse_pagerduty.settings import Settings

__all__ = ["PagerDutyConnector", "Settings"]
