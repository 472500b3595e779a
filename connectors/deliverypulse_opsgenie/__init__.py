"""deliverypulse's Opsgenie connector (``type = "opsgenie"``): incidents through the Incident API
(``GET /v1/incidents``), or alerts through the Alert API (``GET /v2/alerts``) where a source says
``api = "alerts"`` because its team does not use incidents.

Registered as ``opsgenie`` in the ``deliverypulse.connectors`` entry-point group.

- https://docs.opsgenie.com/docs/incident-api#list-incidents
- https://docs.opsgenie.com/docs/alert-api#list-alerts
- https://github.com/opsgenie/opsgenie-oas (the OpenAPI description the shapes come from)
"""

from deliverypulse_opsgenie.connector import OpsgenieConnector
from deliverypulse_opsgenie.settings import Settings

__all__ = ["OpsgenieConnector", "Settings"]
