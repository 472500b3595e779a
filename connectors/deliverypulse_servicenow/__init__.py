"""deliverypulse's ServiceNow connector (``type = "servicenow"``): change requests with their
approver rows, and incidents, from any instance through the Table API.

Registered as ``servicenow`` in the ``deliverypulse.connectors`` entry-point group.

- https://www.servicenow.com/docs/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
- https://developer.servicenow.com/dev.do#!/reference/api/latest/rest/c_TableAPI
"""

from deliverypulse_servicenow.connector import ServiceNowConnector
from deliverypulse_servicenow.settings import Settings

__all__ = ["ServiceNowConnector", "Settings"]
