"""Order follow-up (BC → Sales) on its schedule: status, shipments and invoices of coupled orders."""

from __future__ import annotations

import logging

import azure.functions as func

from shared import composition
from shared.usecases.order_followup import follow_up_orders

bp = func.Blueprint()
_log = logging.getLogger(__name__)


@bp.timer_trigger(schedule="%SCHEDULE_ORDER_FOLLOWUP%", arg_name="timer", run_on_startup=False, use_monitor=False)
def timer_order_followup(timer: func.TimerRequest) -> None:
    """Every coupled Sales order brought up to date with its BC order."""
    job = follow_up_orders(**composition.order_followup_ports())
    _log.info("order follow-up: %s %s", job.status.value, job.counters)
