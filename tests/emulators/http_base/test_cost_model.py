"""The cost model and sliding windows behind the emulators' service-protection limits (pure logic)."""

from __future__ import annotations

import pytest

from emulators._http import CostModel, Fault, FaultPlan, SlidingWindow

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_refuses_over_limit_and_says_when_it_frees() -> None:
    clock = FakeClock()
    window = SlidingWindow(limit=3, window=300, clock=clock)
    for at in (0, 10, 20):
        clock.now = at
        assert window.try_add("user", 1) is None
    clock.now = 30
    assert window.try_add("user", 1) == pytest.approx(270)
    assert window.total("user") == 3
    clock.now = 300.5
    assert window.try_add("user", 1) is None
    assert window.try_add("other", 1) is None


def test_a_single_oversized_cost_is_admitted_into_an_empty_window() -> None:
    window = SlidingWindow(limit=1.0, window=10, clock=FakeClock())
    assert window.try_add("user", 5.0) is None  # like a long request: it runs, then the user waits
    assert window.try_add("user", 0.1) is not None


def test_cost_model_scales_server_time() -> None:
    model = CostModel({"read": 0.25}, default=0.01, time_scale=100)
    assert model.cost("read") == 0.25
    assert model.cost("anything") == 0.01
    assert model.to_real(300) == pytest.approx(3)
    before = model.now()
    model.configure({"time_scale": 1, "costs": {"write": 1}})
    assert model.now() >= before  # server time stays continuous across a scale change
    assert model.as_dict()["costs"] == {"read": 0.25, "write": 1.0}
    with pytest.raises(ValueError, match="positive"):
        model.configure({"time_scale": 0})


def test_fault_plan_consumes_matching_shots_in_order() -> None:
    plan = FaultPlan()
    plan.arm(Fault(kind="fail", method="POST", path=r"/customers$", count=2, status=503))
    plan.arm(Fault(kind="throttle", path="customers"))
    assert plan.take("GET", "/x/customers") is not None  # only the throttle matches a GET
    assert plan.take("GET", "/x/customers") is None
    assert plan.take("POST", "/x/customers").status == 503  # type: ignore[union-attr]
    assert plan.take("POST", "/x/customers").status == 503  # type: ignore[union-attr]
    assert plan.take("POST", "/x/customers") is None
    assert plan.fired == {"throttle": 1, "fail": 2}


def test_fault_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_dict({"kind": "explode"})
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_dict({"kind": "fail", "colour": "red"})
    assert Fault.from_dict({"kind": "throttle"}).status == 429
