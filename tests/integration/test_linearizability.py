"""The linearizability checker itself (keelharness/linearizability.py), on hand-made histories.

Each rejecting case is a known way a replicated store goes wrong (a stale read, a lost
acknowledged write, a compare-and-swap against a value already overwritten, a read of
something nobody wrote); each accepting case is a history that looks suspicious but has a
valid order (overlapping operations, writes with unknown outcome that did or did not
happen, possibly long after the client gave up).
"""

import random

import pytest

from keelharness.linearizability import MISSING, History, Op, check_history, check_register


def R(value, call, ret, p=None, status="ok"):
    return Op("read", call, ret, status=status, value=value, process=p)


def W(value, call, ret=None, p=None, status=None, prev=MISSING):
    status = status or ("ok" if ret is not None else "unknown")
    return Op("write", call, ret, status=status, value=value, prev=prev, process=p)


def CAS(expected, value, call, ret=None, p=None, status=None, swapped=True, prev=MISSING):
    status = status or ("ok" if ret is not None else "unknown")
    return Op("cas", call, ret, status=status, value=value, expected=expected, swapped=swapped,
              prev=prev, process=p)


def U(op):
    """The same operation with an unknown outcome (no completion)."""
    op.status, op.ret = "unknown", None
    return op


def assert_valid(ops, **kw):
    result = check_register(ops, **kw)
    assert result.valid is True, result.explanation
    return result


def assert_invalid(ops, **kw):
    result = check_register(ops, **kw)
    assert result.valid is False, f"accepted a non-linearizable history: {result}"
    assert "not linearizable" in result.explanation
    return result


# -- rejected ---------------------------------------------------------------------------------

def test_rejects_stale_read():
    assert_invalid([W("a", 0, 1), W("b", 2, 3), R("a", 4, 5)])


def test_rejects_lost_acknowledged_write():
    assert_invalid([W("a", 0, 1), R(None, 2, 3)])
    # Lost and then overwritten: the overwrite's prevNode shows it was never there.
    assert_invalid([W("a", 0, 1), W("b", 2, 3, prev="a"), W("c", 4, 5, prev=None)])


def test_rejects_cas_on_overwritten_value():
    assert_invalid([W("a", 0, 1), W("b", 2, 3), CAS("a", "c", 4, 5)])


def test_rejects_read_of_value_never_written():
    assert_invalid([W("a", 0, 1), R("zzz", 2, 3)])
    assert_invalid([R("zzz", 0, 1)])


def test_rejects_failed_cas_that_should_have_succeeded():
    assert_invalid([W("a", 0, 1), CAS("a", "b", 2, 3, swapped=False)])
    # The server named a value it could not have held.
    assert_invalid([W("a", 0, 1), W("b", 2, 3), CAS("z", "c", 4, 5, swapped=False, prev="a")])


def test_rejects_write_that_replaced_the_wrong_value():
    assert_invalid([W("a", 0, 1), W("b", 2, 3, prev=None)])


def test_rejects_reads_going_back_in_time():
    # Sequentially consistent (each client's order is kept) but not linearizable.
    assert_invalid([W("a", 0, 1, p=1), R(None, 2, 3, p=2)])
    # Once one reader saw the overlapping write, a later reader must see it too.
    assert_invalid([W("a", 0, 10, p=1), R("a", 1, 2, p=2), R(None, 3, 4, p=3)])


def test_rejects_unknown_write_seen_before_it_was_sent():
    assert_invalid([R("x", 0, 1), U(W("x", 2))])


def test_rejects_two_swaps_from_the_same_value():
    assert_invalid([W("a", 0, 1), CAS("a", "b", 2, 5), CAS("a", "c", 2, 5)])


def test_explanation_names_the_operation_that_cannot_be_placed():
    result = assert_invalid([W("a", 0, 1, p="c1"), W("b", 2, 3, p="c2"), R("a", 4, 5, p="c3")])
    assert "read -> 'a' ok by c3" in result.explanation
    assert "register holds 'b'" in result.explanation


# -- accepted ---------------------------------------------------------------------------------

def test_accepts_sequential_history():
    assert_valid([W("a", 0, 1), R("a", 2, 3), CAS("a", "b", 4, 5), R("b", 6, 7),
                  CAS("a", "c", 8, 9, swapped=False, prev="b"), W("d", 10, 11, prev="b")])


def test_accepts_read_overlapping_a_write_either_way():
    assert_valid([W("a", 0, 10), R(None, 1, 2), R("a", 3, 4)])
    assert_valid([W("a", 0, 10), R("a", 1, 2), R("a", 3, 4)])


def test_accepts_concurrent_writes_in_either_order():
    assert_valid([W("a", 0, 5), W("b", 0, 5), R("a", 6, 7)])
    assert_valid([W("a", 0, 5), W("b", 0, 5), R("b", 6, 7)])


def test_accepts_order_that_needs_backtracking():
    # w(a) comes first in time, but the only valid order is w(b) r(b) w(a) r(a).
    assert_valid([W("a", 0, 10), W("b", 1, 10), R("b", 2, 3), R("a", 4, 5)])


def test_accepts_unknown_write_that_happened():
    assert_valid([U(W("a", 0)), R("a", 5, 6)])


def test_accepts_unknown_write_that_happened_long_after_the_client_gave_up():
    assert_valid([U(W("a", 0)), R(None, 1, 2), R(None, 20, 21), R("a", 30, 31)])


def test_accepts_unknown_write_that_never_happened():
    assert_valid([W("b", 0, 1), U(W("a", 2)), R("b", 5, 6), R("b", 7, 8)])


def test_accepts_unknown_cas_that_did_or_did_not_happen():
    assert_valid([W("a", 0, 1), U(CAS("a", "b", 2)), R("b", 5, 6)])
    assert_valid([W("a", 0, 1), U(CAS("a", "b", 2)), R("a", 5, 6)])
    # It cannot have swapped from a value the register never held.
    assert_invalid([W("a", 0, 1), U(CAS("z", "b", 2)), R("b", 5, 6)])


def test_accepts_failed_cas_racing_the_write_that_changed_the_value():
    assert_valid([W("a", 0, 1), W("b", 2, 6), CAS("a", "c", 3, 4, swapped=False, prev="b")])


def test_accepts_unknown_write_seen_only_through_a_later_prevnode():
    assert_valid([U(W("x", 0)), W("b", 5, 6, prev="x")])


def test_failed_cas_without_actual_value_keeps_unseen_unknown_writes():
    # Only the unknown write x explains why the compare against "a" failed, and nobody read
    # x: dropping unobserved unknown writes here would wrongly reject the history.
    assert_valid([W("a", 0, 1), U(W("x", 2)), CAS("a", "c", 3, 4, swapped=False)])


def test_failed_reads_and_writes_are_left_out():
    result = assert_valid([W("a", 0, 1), W("b", 2, 3, status="fail"), R("zzz", 2, 3, status="fail"),
                           R(None, 2, 3, status="unknown"), R("a", 4, 5)])
    assert result.ops_dropped == 3


def test_touching_intervals_count_as_overlapping():
    assert_valid([W("a", 0, 1), R(None, 1, 2)])


def test_initial_value():
    assert_valid([R("init", 0, 1)], initial="init")
    assert_invalid([R(None, 0, 1)], initial="init")


# -- generated histories ----------------------------------------------------------------------

def simulate(seed, n_ops=300, processes=6, unknown_rate=0.1):
    """A random history of a real (atomic) register: each operation takes effect at a random
    instant inside its interval; unknown operations take effect later or never."""
    rng = random.Random(seed)
    clock = [0.0] * processes
    planned = []
    for n in range(n_ops):
        p = rng.randrange(processes)
        call = clock[p] + rng.random()
        ret = call + rng.random() * 3
        clock[p] = ret
        kind = rng.choice(("read", "write", "cas"))
        unknown = kind != "read" and rng.random() < unknown_rate
        point = call + rng.random() * (ret - call)
        if unknown:
            point = None if rng.random() < 0.5 else call + rng.random() * 20
        planned.append((point, n, p, kind, call, ret, unknown))
    state, last_values, ops = None, [None], []
    for point, n, p, kind, call, ret, unknown in sorted(
            (x for x in planned if x[0] is not None), key=lambda x: x[0]):
        if kind == "read":
            op = R(state, call, ret, p=p)
        elif kind == "write":
            op = W(f"v{n}", call, ret, p=p, prev=state)
            state = op.value
        else:
            expected = rng.choice(last_values[-3:])
            op = CAS(expected, f"v{n}", call, ret, p=p, swapped=state == expected,
                     prev=MISSING if state == expected else state)
            if op.swapped:
                state = op.value
        if op.kind != "read" and (op.kind == "write" or op.swapped):
            last_values.append(op.value)
        if unknown:
            U(op)
        ops.append(op)
    for point, n, p, kind, call, ret, unknown in planned:
        if point is None:  # never happened
            ops.append(U(W(f"v{n}", call, p=p)))
    rng.shuffle(ops)
    return ops, state


@pytest.mark.parametrize("seed", range(8))
def test_accepts_generated_register_histories(seed):
    ops, _ = simulate(seed)
    result = assert_valid(ops)
    assert result.ops_checked > 200


@pytest.mark.parametrize("seed", range(8))
def test_rejects_generated_history_with_a_stale_read_added(seed):
    ops, final = simulate(seed)
    end = max(op.ret or op.call for op in ops)
    # A value some acknowledged write replaced, read after everything else is over.
    old = next(op.prev for op in sorted(ops, key=lambda o: o.call)
               if op.kind == "write" and op.status == "ok" and op.prev not in (MISSING, final))
    assert_invalid(ops + [R(old, end + 100, end + 101, p="late")])


@pytest.mark.parametrize("seed", range(4))
def test_rejects_generated_history_with_an_acknowledged_write_dropped(seed):
    ops, _ = simulate(seed, unknown_rate=0)
    ok_writes = [op for op in ops if op.kind == "write" and op.status == "ok"]
    last = max(ok_writes, key=lambda op: op.ret)
    end = max(op.ret for op in ops)
    # A final read that does not see the last acknowledged write (nor anything after it).
    assert_invalid(ops + [R(last.prev, end + 100, end + 101, p="late")])


def test_gives_up_rather_than_guessing():
    ops, _ = simulate(1)
    result = check_register(ops, max_steps=10)
    assert result.valid is None and "gave up" in result.explanation


def test_check_history_splits_by_key_and_recorder_fills_ops():
    h = History()
    a = h.invoke("c1", "write", "k1", value="a")
    h.complete(a, "ok", prev=None)
    b = h.invoke("c2", "read", "k2")
    h.complete(b, "ok", value=None)
    c = h.invoke("c2", "read", "k1")
    h.complete(c, "ok", value="a")
    d = h.invoke("c3", "cas", "k2", value="x", expected="nope")
    h.complete(d, "unknown")
    results = check_history(h.ops)
    assert set(results) == {"k1", "k2"}
    assert all(r.valid for r in results.values())
    assert d.ret is None and a.ret >= a.call
    bad = h.invoke("c4", "read", "k1")
    h.complete(bad, "ok", value=None)
    assert check_history(h.ops)["k1"].valid is False
