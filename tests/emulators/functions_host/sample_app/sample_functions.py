"""Functions that record each invocation to ``$SAMPLE_RECORD_FILE`` (JSON lines) for the tests."""

import asyncio
import json
import os
import threading
import time

import azure.functions as func

bp = func.Blueprint()
_lock = threading.Lock()


def record(function: str, **data: object) -> None:
    line = json.dumps({"function": function, **data}, default=str)
    with _lock, open(os.environ["SAMPLE_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(line + "\n")


@bp.route(route="echo/{id:guid}/{part?}", methods=["GET", "POST"])
def http_echo(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode(),
        "x_test": req.headers.get("X-Test"),
        "function_name": context.function_name,
        "setting": os.environ.get("SAMPLE_GREETING"),
    }
    return func.HttpResponse(
        json.dumps(payload), status_code=201, mimetype="application/json", headers={"X-Echo": "yes"}
    )


@bp.route(route="items/special", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def http_special(req: func.HttpRequest) -> str:
    return "special"


@bp.route(route="items/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def http_item(req: func.HttpRequest) -> str:
    return "item:" + req.route_params["name"]


@bp.function_name("http_boom")
@bp.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom_handler(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaboom-secret-detail")


@bp.route(route="async/{n:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def http_async(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return func.HttpResponse(json.dumps({"double": 2 * int(req.route_params["n"])}), mimetype="application/json")


@bp.route(route="slow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def http_slow(req: func.HttpRequest) -> str:
    time.sleep(float(req.params.get("seconds", "0")))
    return "done"


@bp.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%")
def timer_tick(timer: func.TimerRequest) -> None:
    start = time.time()
    time.sleep(float(os.environ.get("TICK_SLEEP", "0")))
    record("timer_tick", start=start, end=time.time(), past_due=timer.past_due)


@bp.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def timer_startup(timer: func.TimerRequest) -> None:
    record("timer_startup", past_due=timer.past_due)


@bp.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
async def timer_manual(timer: func.TimerRequest) -> None:
    await asyncio.sleep(0)
    record("timer_manual", past_due=timer.past_due)


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%OK_QUEUE%", connection="SB_CONNECTION")
def queue_ok(msg: func.ServiceBusMessage) -> None:
    record(
        "queue_ok",
        body=msg.get_body().decode(),
        message_id=msg.message_id,
        delivery_count=msg.delivery_count,
        content_type=msg.content_type,
        correlation_id=msg.correlation_id,
        user_properties=msg.user_properties,
        application_properties=msg.application_properties,
        enqueued=msg.enqueued_time_utc is not None,
    )


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%FLAKY_QUEUE%", connection="SB_CONNECTION")
def queue_flaky(msg: func.ServiceBusMessage) -> None:
    record("queue_flaky", body=msg.get_body().decode(), delivery_count=msg.delivery_count)
    raise RuntimeError("always fails, so the broker redelivers")


@bp.service_bus_queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="SB_CONNECTION")
async def queue_slow(msg: func.ServiceBusMessage) -> None:
    start = time.time()
    body = msg.get_body().decode()
    # "sleep:5" outlives a short queue lock, which only lock renewal keeps from being redelivered.
    await asyncio.sleep(float(body.split(":", 1)[1]) if body.startswith("sleep:") else 0.6)
    record("queue_slow", body=body, start=start, end=time.time(), delivery_count=msg.delivery_count)


@bp.service_bus_queue_trigger(
    arg_name="msgs", queue_name="%BATCH_QUEUE%", connection="SB_CONNECTION", cardinality=func.Cardinality.MANY
)
def queue_batch(msgs: list[func.ServiceBusMessage]) -> None:
    record("queue_batch", bodies=[m.get_body().decode() for m in msgs])
