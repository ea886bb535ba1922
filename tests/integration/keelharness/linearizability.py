"""Linearizability checking for a register with compare-and-swap.

A test records a *history*: every operation some client invoked, with the
time it was invoked, the time its answer arrived and what the answer was.
The history is linearizable if every operation can be given one instant
inside its [invocation, completion] interval such that, taken in the order
of those instants, the operations are what one register with a single copy
would have answered.  `check_register` decides that, per key (a key-value
store is linearizable iff each key is: Herlihy & Wing's locality, which is
what makes checking per key sound and fast).

The register's operations (`Op.kind`):

  read     returned `value` (None: the key did not exist);
  write    set `value`; `prev`, when the server reported it, is the value it
           replaced (etcd's prevNode), which the check holds it to;
  cas      compare-and-swap: if the register held `expected`, set `value`.
           `swapped=True`: it did.  `swapped=False`: the compare failed, so
           the register held something other than `expected`; `prev` is
           that value when the server said which (etcd's error cause
           "[expected != actual]"), else MISSING.

and their outcomes (`Op.status`):

  ok       it happened as reported (a failed compare is ok: it happened, and
           what it tells about the register is checked);
  fail     it certainly did not happen (the request was never sent, or was
           refused before it could take effect): left out;
  unknown  no answer (timeout, connection lost, "timed out" from the
           server): it may have taken effect at any time after its
           invocation - even long after the client gave up - or never.
           Unknown reads are left out (they changed nothing).

The search is Wing & Gong's, with Lowe's memoisation ("Testing for
linearizability", 2017): walk the events in time order; at each point try to
linearize any operation that has been invoked and not yet linearized; when
the next event is the completion of an operation not yet linearized, back
up.  A configuration (set of linearized operations, register value) that was
already explored and failed is never explored again, which is what keeps the
search fast on hundreds of operations.  Unknown operations have no
completion event, so they are never forced: leaving one out is how "it never
happened" is expressed, and the search succeeds as soon as every operation
with a known outcome is linearized.

One more pruning, sound because values are unique per write: an unknown
write (or compare-and-swap) whose value no operation ever observed is
dropped before the search.  If it did take effect, nothing saw it before it
was overwritten, so the history without it is linearizable exactly when the
history with it is.  That argument needs every operation that looks at the
register to see its exact value, so the pruning is skipped for a key when
some failed compare-and-swap did not say what the register held.

Writes must use values that are unique per key (tests use "<client>-<seq>"):
that is what lets a read name the one write it saw.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable


class _Missing:
    """The 'not observed' marker: distinct from None, which means 'key absent'."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self):
        return "MISSING"

    def __reduce__(self):
        return (_Missing, ())


MISSING = _Missing()
KINDS = ("read", "write", "cas")
STATUSES = ("ok", "fail", "unknown")


@dataclass(eq=False)
class Op:
    """One client operation on one key (see the module text for the fields' meaning)."""

    kind: str
    call: float
    ret: float | None = None
    status: str = "ok"
    value: Any = None
    expected: Any = None
    swapped: bool = True
    prev: Any = MISSING
    key: Hashable = None
    process: Hashable = None
    note: str = ""
    id: int = -1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.status == "ok" and self.ret is None:
            raise ValueError("an ok operation needs its completion time")
        if self.ret is not None and self.ret < self.call:
            raise ValueError(f"completion {self.ret} before invocation {self.call}")

    def describe(self) -> str:
        if self.kind == "read":
            what = f"read -> {self.value!r}"
        elif self.kind == "write":
            what = f"write {self.value!r}"
            if self.prev is not MISSING:
                what += f" (replaced {self.prev!r})"
        elif self.swapped:
            what = f"cas {self.expected!r} -> {self.value!r}"
        else:
            what = f"cas {self.expected!r} -> {self.value!r} FAILED"
            if self.prev is not MISSING:
                what += f" (held {self.prev!r})"
        end = "?" if self.ret is None else f"{self.ret:.6f}"
        who = "" if self.process is None else f" by {self.process}"
        note = f" [{self.note}]" if self.note else ""
        return f"#{self.id} {what} {self.status}{who} @[{self.call:.6f}, {end}]{note}"


@dataclass
class Result:
    """What check_register found.  `valid` is None when the search ran out of budget."""

    valid: bool | None
    key: Hashable = None
    ops_checked: int = 0
    ops_dropped: int = 0
    steps: int = 0
    explanation: str = ""
    linearization: list[Op] = field(default_factory=list)

    def __bool__(self):
        return self.valid is True


_IMPOSSIBLE = object()


def _step(state, op: Op):
    """The register's answer to `op` in `state`: the new state, or _IMPOSSIBLE.

    Unknown operations only ever take effect here (a compare that would fail
    is the same as the operation not happening, which is expressed by never
    linearizing it), so they return _IMPOSSIBLE where they would change
    nothing.
    """
    if op.kind == "read":
        return state if state == op.value else _IMPOSSIBLE
    if op.kind == "write":
        if op.status == "ok" and op.prev is not MISSING and op.prev != state:
            return _IMPOSSIBLE
        return op.value
    # cas
    if op.status == "unknown":
        return op.value if state == op.expected else _IMPOSSIBLE
    if op.swapped:
        return op.value if state == op.expected else _IMPOSSIBLE
    if state == op.expected:
        return _IMPOSSIBLE
    if op.prev is not MISSING and op.prev != state:
        return _IMPOSSIBLE
    return state


def _relevant(ops: list[Op]) -> tuple[list[Op], int]:
    """The operations the search needs, and how many were dropped."""
    kept = [op for op in ops
            if op.status == "ok" or (op.status == "unknown" and op.kind != "read")]
    exact = not any(op.kind == "cas" and op.status == "ok" and not op.swapped
                    and op.prev is MISSING for op in kept)
    if exact:
        seen = set()
        for op in kept:
            if op.status != "ok" and op.kind != "cas":
                continue
            if op.kind == "read":
                seen.add(op.value)
            elif op.kind == "write":
                if op.prev is not MISSING:
                    seen.add(op.prev)
            else:
                seen.add(op.expected)
                if op.prev is not MISSING:
                    seen.add(op.prev)
        kept = [op for op in kept
                if op.status == "ok" or op.kind == "read" or op.value in seen]
    return kept, len(ops) - len(kept)


class _Entry:
    __slots__ = ("op", "is_call", "prev", "next", "match")

    def __init__(self, op, is_call):
        self.op = op
        self.is_call = is_call
        self.prev = self.next = self.match = None


def check_register(ops: Iterable[Op], initial=None, *, max_steps: int = 2_000_000,
                   key: Hashable = None) -> Result:
    """Is this history of one register linearizable?  See the module text.

    Returns a Result: valid True (with one linearization), False (with an
    explanation naming the operations that could not be placed), or None
    when more than `max_steps` search steps were needed.
    """
    all_ops = list(ops)
    for n, op in enumerate(all_ops):
        if op.id < 0:
            op.id = n
    kept, dropped = _relevant(all_ops)
    result = Result(valid=None, key=key, ops_checked=len(kept), ops_dropped=dropped)

    # Events in time order; an invocation sorts before a completion at the same instant, so
    # touching intervals count as overlapping (the permissive reading of equal timestamps).
    events = []
    for i, op in enumerate(kept):
        events.append((op.call, 0, i, op, True))
        if op.status == "ok":
            events.append((op.ret, 1, i, op, False))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, False)
    last = head
    calls = {}
    for _, _, i, op, is_call in events:
        entry = _Entry(op, is_call)
        if is_call:
            calls[i] = entry
        else:
            entry.match = calls[i]
            calls[i].match = entry
        last.next = entry
        entry.prev = last
        last = entry
    index = {id(op): i for i, op in enumerate(kept)}

    def lift(call):
        call.prev.next = call.next
        if call.next:
            call.next.prev = call.prev
        ret = call.match
        if ret is not None:
            ret.prev.next = ret.next
            if ret.next:
                ret.next.prev = ret.prev

    def unlift(call):
        ret = call.match
        if ret is not None:
            ret.prev.next = ret
            if ret.next:
                ret.next.prev = ret
        call.prev.next = call
        if call.next:
            call.next.prev = call

    remaining = sum(1 for op in kept if op.status == "ok")
    state = initial
    linearized = 0
    cache: set = set()
    stack: list = []
    best_depth, best = -1, None
    steps = 0
    entry = head.next
    while remaining:
        steps += 1
        if steps > max_steps:
            result.steps = steps
            result.explanation = (f"gave up after {max_steps} search steps "
                                  f"({len(kept)} operations, {dropped} dropped)")
            return result
        if entry.is_call:
            new = _step(state, entry.op)
            if new is not _IMPOSSIBLE:
                bits = linearized | (1 << index[id(entry.op)])
                if (bits, new) not in cache:
                    cache.add((bits, new))
                    stack.append((entry, state))
                    linearized, state = bits, new
                    if entry.op.status == "ok":
                        remaining -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # entry.op completed, but nothing tried so far lets it be placed before this point.
            if len(stack) > best_depth:
                best_depth = len(stack)
                best = (entry.op, state, [e.op for e, _ in stack])
            if not stack:
                result.steps = steps
                result.valid = False
                result.explanation = _explain(best, kept)
                return result
            call, state = stack.pop()
            linearized &= ~(1 << index[id(call.op)])
            if call.op.status == "ok":
                remaining += 1
            unlift(call)
            entry = call.next
    result.steps = steps
    result.valid = True
    result.linearization = [e.op for e, _ in stack]
    return result


def _explain(best, kept: list[Op]) -> str:
    stuck, state, prefix = best
    placed = {id(op) for op in prefix}
    lines = [f"not linearizable: at best {len(prefix)} of {len(kept)} operations can be ordered;",
             f"then the register holds {state!r} and this operation cannot be placed "
             f"before it completed:",
             f"  {stuck.describe()}",
             "operations running at that point and not yet placed:"]
    open_ops = [op for op in kept if id(op) not in placed and op.call <= stuck.ret
                and op is not stuck]
    for op in open_ops[-12:]:
        lines.append(f"  {op.describe()}")
    if prefix:
        lines.append("the last operations of that ordering:")
        for op in prefix[-8:]:
            lines.append(f"  {op.describe()}")
    return "\n".join(lines)


def check_history(ops: Iterable[Op], initial=None, **options) -> dict[Hashable, Result]:
    """check_register for every key of a multi-key history."""
    by_key: dict[Hashable, list[Op]] = {}
    for n, op in enumerate(ops):
        if op.id < 0:
            op.id = n
        by_key.setdefault(op.key, []).append(op)
    return {k: check_register(v, initial, key=k, **options) for k, v in by_key.items()}


class History:
    """A thread-safe recorder: invoke() before sending, complete() once the answer is in.

    Timestamps come from time.monotonic(), read just before the request leaves
    and just after the answer arrived, so each recorded interval contains the
    real one.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._ids = itertools.count()

    def invoke(self, process, kind: str, key, *, value=None, expected=None, note="") -> Op:
        op = Op(kind=kind, call=time.monotonic(), status="unknown", value=value,
                expected=expected, key=key, process=process, note=note)
        with self._lock:
            op.id = next(self._ids)
            self._ops.append(op)
        return op

    @staticmethod
    def complete(op: Op, status: str, **fields) -> Op:
        """Record the outcome; fields: value (reads), swapped, prev, note."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.monotonic()
        for name, val in fields.items():
            if name not in ("value", "swapped", "prev", "note"):
                raise ValueError(f"complete() does not take {name!r}")
            setattr(op, name, val)
        op.status = status
        op.ret = now if status != "unknown" else None
        return op

    @property
    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)
