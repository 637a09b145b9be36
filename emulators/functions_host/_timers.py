"""Timer triggers: NCRONTAB (6 fields, seconds first) or TimeSpan schedules, never overlapping."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions.timer import TimerRequest
from croniter import croniter

from ._app import TimerFunction
from ._invoke import HOST_LOG, InvocationResult, Invoker
from ._settings import HostConfigError, parse_timespan

__all__ = ["TimerRunner", "schedule_zone"]

MANUAL_REASON = "This function was programmatically called via the host APIs."
# A tick that starts this much later than scheduled (the previous run overran) is "past due".
_PAST_DUE_SLACK = dt.timedelta(seconds=1)


def schedule_zone(environ: Mapping[str, str]) -> dt.tzinfo:
    """Schedules run in UTC unless ``WEBSITE_TIME_ZONE`` names an IANA zone, as on Linux plans.

    Raises:
        HostConfigError: ``WEBSITE_TIME_ZONE`` is not an IANA zone name.
    """
    name = environ.get("WEBSITE_TIME_ZONE", "").strip()
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HostConfigError(f"WEBSITE_TIME_ZONE={name!r} is not an IANA time zone name") from exc


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


class TimerRunner:
    """Fires one timer function on its schedule on a thread of its own.

    One lock per timer serialises scheduled and manual (admin) runs, which gives the host's
    "never two overlapping runs of the same timer" guarantee; ticks missed while a run was in
    progress are skipped, not queued, as the real TimerTrigger does.
    """

    def __init__(self, function: TimerFunction, invoker: Invoker, zone: dt.tzinfo) -> None:
        self.function = function
        self._invoker = invoker
        self._zone = zone
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: dt.datetime | None = None
        self._interval: dt.timedelta | None = None
        schedule = function.schedule.strip()
        if ":" in schedule and " " not in schedule:
            self._interval = parse_timespan(schedule, what=f"function '{function.name}' schedule")
            if self._interval is None or self._interval <= dt.timedelta(0):
                raise HostConfigError(f"function '{function.name}': schedule {schedule!r} must be positive")
        elif len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
            raise HostConfigError(
                f"function '{function.name}': schedule {schedule!r} is not a 6-field NCRONTAB expression "
                "'{second} {minute} {hour} {day} {month} {day-of-week}' or a TimeSpan"
            )

    def _occurrences(self, start: dt.datetime) -> Iterator[dt.datetime]:
        if self._interval is not None:
            moment = start
            while True:
                moment += self._interval
                yield moment
        else:
            cron = croniter(self.function.schedule.strip(), start, second_at_beginning=True)
            while True:
                yield cron.get_next(dt.datetime)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first scheduled occurrence strictly after ``moment``."""
        return next(self._occurrences(moment))

    def start(self) -> None:
        """Start the schedule thread (running once first when ``run_on_startup``)."""
        self._thread = threading.Thread(target=self._loop, name=f"timer-{self.function.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop scheduling; wait up to ``timeout`` seconds for a run in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def fire(self, *, reason: str = MANUAL_REASON, scheduled: dt.datetime | None = None) -> InvocationResult:
        """Run the function now, after any run in progress has finished."""
        with self._lock:
            now = dt.datetime.now(self._zone)
            past_due = scheduled is not None and now - scheduled > _PAST_DUE_SLACK
            request = TimerRequest(
                past_due=past_due,
                schedule_status={
                    "Last": _iso(self._last) if self._last else None,
                    "Next": _iso(self.next_after(now)),
                    "LastUpdated": _iso(now),
                },
                schedule={"AdjustForDST": True},
            )
            self._last = now
            return self._invoker.invoke(self.function.call, request, reason)

    def _loop(self) -> None:
        if self.function.run_on_startup and not self._stop.is_set():
            self.fire(reason="Timer fired at startup (run_on_startup)")
        previous: dt.datetime | None = None
        while not self._stop.is_set():
            now = dt.datetime.now(self._zone)
            # max(): a wait that wakes a hair early must not fire the same occurrence twice.
            due = self.next_after(max(now, previous) if previous else now)
            previous = due
            HOST_LOG.debug("Timer '%s' next occurrence %s", self.function.name, _iso(due))
            if self._stop.wait((due - now).total_seconds()):
                return
            self.fire(reason=f"Timer fired at {_iso(due)}", scheduled=due)
