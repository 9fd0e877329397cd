"""Airflow-facing glue for the loyalty DAG: resolves the program file and the warehouse."""

from __future__ import annotations

import logging
from datetime import date

from toast_passkit.loyalty.engine import run_loyalty
from toast_passkit.loyalty.program import Program, load_program
from toast_passkit.settings import load_settings
from toast_passkit.warehouse import Warehouse

log = logging.getLogger(__name__)


def check_program() -> dict[str, object]:
    """Load and validate the program file before any data moves (raises ProgramError)."""
    settings = load_settings()
    program = load_program(settings.program_file)
    log.info("program file %s is valid (fingerprint %s)", settings.program_file,
             program.fingerprint())
    return {"program_file": str(settings.program_file), "fingerprint": program.fingerprint()}


def compute_pass_states(day: str, full_recompute: bool = False) -> dict[str, object]:
    """Run the loyalty engine up to business date `day`; returns its counts (no PII)."""
    program: Program = load_program(load_settings().program_file)
    warehouse = Warehouse.from_connection()
    try:
        warehouse.migrate()
        summary = run_loyalty(warehouse, program, date.fromisoformat(day),
                              full_recompute=full_recompute)
    finally:
        warehouse.dispose()
    result = summary.as_dict()
    tiers = ", ".join(f"{t}: {n}" for t, n in sorted(summary.tier_counts.items()))
    log.info("loyalty as of %s (%s): %d guests, %d members (%d to enrol), %d points issued, "
             "tiers {%s}, %d coupons, %d re-engagements, %d revocations", summary.as_of,
             summary.mode, summary.guests, summary.members, summary.members_to_enrol,
             summary.points_issued, tiers, summary.coupons, summary.reengagements,
             summary.revocations)
    return result
