"""Airflow plugin serving the PassKit webhook receiver in the api-server at /passkit-webhooks.

Plugin endpoints are not behind Airflow's login: the receiver authenticates every request
itself (secret token in the path, optional HMAC signature). PassKit's target URL is then
``https://<airflow-host>/passkit-webhooks/<PASSKIT_WEBHOOK_TOKEN>/events``.

Without ``PASSKIT_WEBHOOK_TOKEN`` (or with an invalid setting) the receiver is not served and
an error is logged. Raising here instead would also break every other Airflow component that
loads plugins (scheduler, dag processor, workers), which do not need the receiver's settings.
Plugins never reload: restart the api-server after changing a setting.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from toast_passkit.webhooks.receiver import ReceiverConfigError, create_app_from_env

log = logging.getLogger(__name__)

URL_PREFIX = "/passkit-webhooks"


def _fastapi_apps() -> list[dict[str, Any]]:
    try:
        app = create_app_from_env()
    except (ReceiverConfigError, OSError) as exc:
        log.warning("PassKit webhook receiver not served at %s: %s", URL_PREFIX, exc)
        return []
    return [{"app": app, "url_prefix": URL_PREFIX, "name": "PassKit webhooks"}]


class PassKitWebhooksPlugin(AirflowPlugin):
    """Registers the PassKit webhook receiver with the Airflow api-server."""

    name = "passkit_webhooks"
    fastapi_apps = _fastapi_apps()
