"""Return rates of re-engaged members, treated against control, written to reengagement_report.

An absence **returned** when its member made a qualifying visit within ``return_window_days``
after the due date. The report for day D covers the absences due in the
``report_window_days`` ending D − ``return_window_days``: their return windows are closed,
so no rate is understated for lack of time. Rows: one per arm (channel 'all', each absence
counted once) and one per treated channel ('pass_message', 'coupon', 'audience'; an absence
treated on two channels counts in both). The difference of the arms' rates is the measured
effect of re-engagement (``uplift``); the control arm is a random, stable draw.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa

from toast_passkit.reengagement.plan import CONTROL, TREATED
from toast_passkit.warehouse import Warehouse, split_statements, sql_path

log = logging.getLogger(__name__)

ALL_CHANNELS = "all"
_RATE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class ReportRow:
    """Absences and returns of one arm (channel 'all') or one treated channel."""

    arm: str
    channel: str
    absences: int
    returned: int

    @property
    def return_rate(self) -> Decimal | None:
        if not self.absences:
            return None
        return (Decimal(self.returned) / Decimal(self.absences)).quantize(
            _RATE_QUANTUM, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class ReengagementReport:
    """The report of one day."""

    report_on: date
    due_from: date
    due_to: date
    return_window_days: int
    rows: tuple[ReportRow, ...]

    def row(self, arm: str, channel: str = ALL_CHANNELS) -> ReportRow | None:
        return next((r for r in self.rows if r.arm == arm and r.channel == channel), None)

    @property
    def uplift(self) -> Decimal | None:
        """Treated return rate minus control return rate (None when an arm is empty)."""
        treated, control = self.row(TREATED), self.row(CONTROL)
        if treated is None or control is None:
            return None
        if treated.return_rate is None or control.return_rate is None:
            return None
        return treated.return_rate - control.return_rate

    def format(self) -> str:
        """The report as a small text table (counts only)."""
        lines = [
            f"Re-engagement report {self.report_on}: absences due {self.due_from} to "
            f"{self.due_to}, returned = qualifying visit within {self.return_window_days} days",
            f"{'arm':<8} {'channel':<13} {'absences':>9} {'returned':>9} {'rate':>8}",
        ]
        for r in self.rows:
            rate = "-" if r.return_rate is None else f"{r.return_rate:.2%}"
            lines.append(f"{r.arm:<8} {r.channel:<13} {r.absences:>9} {r.returned:>9} "
                         f"{rate:>8}")
        uplift = self.uplift
        lines.append("uplift (treated - control): "
                     + ("-" if uplift is None else f"{uplift * 100:+.2f} points"))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "report_on": self.report_on.isoformat(), "due_from": self.due_from.isoformat(),
            "due_to": self.due_to.isoformat(), "return_window_days": self.return_window_days,
            "rows": [{"arm": r.arm, "channel": r.channel, "absences": r.absences,
                      "returned": r.returned,
                      "return_rate": None if r.return_rate is None else str(r.return_rate)}
                     for r in self.rows],
            "uplift": None if self.uplift is None else str(self.uplift),
        }


def report_window(as_of: date, return_window_days: int,
                  report_window_days: int) -> tuple[date, date]:
    """Due dates a report of ``as_of`` covers: the last ``report_window_days`` whose return
    window has closed by ``as_of``."""
    due_to = as_of - timedelta(days=return_window_days)
    return due_to - timedelta(days=report_window_days - 1), due_to


def build_report(
    warehouse: Warehouse,
    as_of: date,
    *,
    return_window_days: int = 30,
    report_window_days: int = 90,
    due_from: date | None = None,
    due_to: date | None = None,
    now: datetime | None = None,
) -> ReengagementReport:
    """Compute the report of ``as_of`` and replace its rows in ``reengagement_report``.

    ``due_from`` / ``due_to`` override the window of due dates (see :func:`report_window`).
    """
    default_from, default_to = report_window(as_of, return_window_days, report_window_days)
    due_from, due_to = due_from or default_from, due_to or default_to
    params = {"due_from": due_from, "due_to": due_to, "return_window_days": return_window_days}
    (statement,) = split_statements(sql_path("reengagement/report_010_outcomes.sql").read_text())
    with warehouse.begin() as conn:
        outcomes = conn.execute(sa.text(statement), params).mappings().all()
        report = ReengagementReport(as_of, due_from, due_to, return_window_days,
                                    _aggregate(outcomes))
        warehouse.execute(conn, "DELETE FROM reengagement_report WHERE report_on = :report_on",
                          {"report_on": as_of})
        created_at = now or datetime.now(UTC)
        conn.execute(sa.text("""
            INSERT INTO reengagement_report (report_on, due_from, due_to, return_window_days,
                                             arm, channel, absences, returned, return_rate,
                                             created_at)
            VALUES (:report_on, :due_from, :due_to, :return_window_days, :arm, :channel,
                    :absences, :returned, :return_rate, :created_at)
        """), [{**params, "report_on": as_of, "arm": r.arm, "channel": r.channel,
                "absences": r.absences, "returned": r.returned, "return_rate": r.return_rate,
                "created_at": created_at} for r in report.rows])
    log.info("re-engagement report %s: %s", as_of, report.as_dict())
    return report


def _aggregate(outcomes: list[sa.RowMapping]) -> tuple[ReportRow, ...]:
    """Arm totals (each absence once) and treated channel rows from per-action outcomes."""
    arms: dict[str, dict[tuple[str, str], int]] = {TREATED: {}, CONTROL: {}}
    channels: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    for o in outcomes:
        absence = (o["external_id"], o["absence_key"])
        arms.setdefault(o["arm"], {})[absence] = int(o["returned"])
        if o["arm"] == TREATED:
            channels[o["channel"]][absence] = int(o["returned"])
    rows = [ReportRow(arm, ALL_CHANNELS, len(seen), sum(seen.values()))
            for arm, seen in arms.items()]
    rows += [ReportRow(TREATED, channel, len(seen), sum(seen.values()))
             for channel, seen in sorted(channels.items())]
    return tuple(rows)
