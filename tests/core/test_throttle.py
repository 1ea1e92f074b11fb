"""The Redis throttle: evenly spaced slots that hold across any number of concurrent reservers."""

from __future__ import annotations

import threading
import time

from core.throttle import GATE_TRANSIT_S, Gate, Throttle


def test_slots_are_evenly_spaced_at_the_rate(redis_conn):
    times = Throttle(redis_conn).reserve(1, 1, 10, per_hour=36000)  # 10 per second
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(abs(g - 0.1) < 1e-9 for g in gaps)


def test_next_batch_continues_after_the_previous_one(redis_conn):
    throttle = Throttle(redis_conn)
    first = throttle.reserve(1, 1, 5, per_hour=3600)
    second = throttle.reserve(1, 1, 5, per_hour=3600)
    assert abs(second[0] - (first[-1] + 1.0)) < 0.05


def test_concurrent_workers_never_share_a_slot(redis_conn):
    throttle = Throttle(redis_conn)
    results: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(20):
            start, _now, step = throttle.reserve_on_redis_clock(7, 1, 5, per_hour=360000)  # 100/s
            with lock:
                results.extend(start + i * step for i in range(5))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(results)
    assert len(ordered) == 400
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    assert min(gaps) > 0.0099  # never two messages in one 10 ms slot
    assert ordered[-1] - ordered[0] >= 399 * 0.01 - 1e-6  # 400 slots take 4 s: the rate holds


def test_workspace_cap_slows_every_campaign(redis_conn):
    throttle = Throttle(redis_conn)
    a = throttle.reserve(1, 9, 3, per_hour=36000, workspace_per_hour=3600)
    b = throttle.reserve(2, 9, 3, per_hour=36000, workspace_per_hour=3600)
    assert abs((a[1] - a[0]) - 1.0) < 1e-9  # the 1/s cap wins over the campaign's 10/s
    assert b[0] >= a[-1] + 0.99  # the second campaign queues behind the first on the shared cap


def test_gate_spaces_each_handover_a_span_after_the_previous_answer(redis_conn):
    # Two workers hand over through one gate; the provider answers within a few ms.
    gates = [Gate(redis_conn, "test:gate", 0.05, 1), Gate(redis_conn, "test:gate", 0.05, 1)]
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def worker(gate: Gate, seed: int) -> None:
        for k in range(6):
            token = gate.enter()
            went = time.monotonic()
            time.sleep(0.002 * ((k + seed) % 3))
            with lock:
                spans.append((went, time.monotonic()))  # (handed over, answered)
            gate.leave(token, went)

    threads = [threading.Thread(target=worker, args=(g, i)) for i, g in enumerate(gates)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 12
    # The provider had each message by its answer: the next one goes a full span after that.
    assert all(b[0] >= a[1] + 0.05 for a, b in zip(spans, spans[1:], strict=False))


def test_a_slow_answer_costs_the_transit_allowance_not_the_round_trip(redis_conn):
    gates = [Gate(redis_conn, "test:slow", 0.1, 1), Gate(redis_conn, "test:slow", 0.1, 1)]
    first = gates[0].enter()
    went = time.monotonic()
    token = gates[1].enter()  # the first is still waiting for its answer (a gateway slower than GATE_TRANSIT_S)
    second = time.monotonic()
    gates[1].leave(token, second)
    gates[0].leave(first, went)
    assert 0.1 + GATE_TRANSIT_S - 0.005 <= second - went < 0.1 + GATE_TRANSIT_S + 0.05


def test_a_worker_held_up_after_the_gate_counts_from_its_own_handover(redis_conn):
    gates = [Gate(redis_conn, "test:held", 0.1, 1), Gate(redis_conn, "test:held", 0.1, 1)]
    first = gates[0].enter()
    time.sleep(0.05)  # held up (a busy CPU, a GC pause) between the gate and the handover
    went = time.monotonic()
    time.sleep(0.03)  # the provider answers later than the allowance
    gates[0].leave(first, went)
    token = gates[1].enter()
    second = time.monotonic()
    gates[1].leave(token, second)
    assert second >= went + GATE_TRANSIT_S + 0.1  # not from the gate's time, 50 ms earlier


def test_gate_lets_per_span_through_and_holds_the_next_until_the_span_after_the_first_answer(redis_conn):
    gate = Gate(redis_conn, "test:gate2", 0.3, 2)  # at most 2 receipts in any 0.3 s
    went, answered = [], []
    for _ in range(5):
        token = gate.enter()
        went.append(time.monotonic())
        answered.append(time.monotonic())
        gate.leave(token, went[-1])
    assert went[1] - went[0] < 0.1  # the second goes at once
    assert all(went[k] >= answered[k - 2] + 0.3 for k in range(2, 5))  # the third waits for the first's span


def test_gate_up_to_four_a_second_and_shared_under_a_workspace_cap(redis_conn):
    throttle = Throttle(redis_conn)
    assert throttle.gate(1, 9, per_hour=18000) is None  # 5/s: one message of jitter stays under 1.25 x
    assert throttle.gate(1, 9, per_hour=14400) is not None  # 4/s: a fifth in one second would be 1.25 x
    assert throttle.gate(1, 9, per_hour=7200) is not None  # 2/s: a third in one second would be 1.5 x
    assert throttle.gate(1, 9, per_hour=3600) is not None
    a, b = throttle.gate(1, 9, 36000, workspace_per_hour=3600), throttle.gate(2, 9, 36000, workspace_per_hour=3600)
    a.leave(a.enter(), time.monotonic())
    started = time.monotonic()
    token = b.enter()  # another campaign, same 1/s workspace cap: waits out the interval after a's answer
    assert time.monotonic() - started >= 0.9
    b.leave(token, time.monotonic())
