"""Re-engagement of lapsed and uninstalled members: plan the actions, export the audience, report.

The loyalty engine decides *who* is due (``reengagements``: one row per member and absence,
reason 'lapsed' or 'uninstalled'), and also computes point expiry and pass revocation, which
the PassKit sync applies. This package decides *what to do* about each re-engagement, once:

- ``plan.plan_reengagement``: a stable hash puts ``control_share`` of the absences in a
  control arm (nothing is sent, to measure the effect); treated members whose pass can be
  notified get the configured channels (a message on the pass, a win-back coupon), the others
  (pass uninstalled, invalidated or revoked) go to ``reengagement_audience`` for the team's
  e-mail/CRM tool. Rows land in ``reengagement_actions``, which the PassKit sync sends.
- ``plan.export_audience``: the audience planned on a date as a CSV file.
- ``report.build_report``: return rates of treated and control members.

Settings: ``settings.ReengagementSettings`` (Airflow Variable ``reengagement_config``).
"""

from toast_passkit.reengagement.plan import (
    AudienceExport,
    PlanSummary,
    assign_arm,
    export_audience,
    plan_reengagement,
)
from toast_passkit.reengagement.report import ReengagementReport, build_report
from toast_passkit.reengagement.settings import ReengagementSettings, load_reengagement_settings

__all__ = [
    "AudienceExport",
    "PlanSummary",
    "ReengagementReport",
    "ReengagementSettings",
    "assign_arm",
    "build_report",
    "export_audience",
    "load_reengagement_settings",
    "plan_reengagement",
]
