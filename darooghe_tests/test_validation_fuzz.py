"""Property-based fuzzing of the validator's decision: whatever arrives, exactly one output and
never an exception; and the fast reader always agrees with the diagnostic one."""

from __future__ import annotations

import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darooghe.schema import ERROR_CODES, FIELDS, Transaction, inspect_transaction, read_transaction
from darooghe.validation import ErrorLog, decide
from darooghe.validation.samples import encode, transaction_dict

EVENT_MS = 1774276522145
TOPIC = "darooghe.transactions"
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def check_one_output(value: bytes | None, timestamp: int | None = EVENT_MS) -> None:
    """The invariants of decide() on any input."""
    verdict = decide(value, TOPIC, 1, 99, timestamp, b"k")
    assert isinstance(verdict.value, bytes)
    if verdict.valid:
        assert verdict.error_codes == ()
        t = Transaction.decode(verdict.value)  # the output is itself a valid transaction ...
        assert t.to_json_bytes() == verdict.value  # ... already normalised
        assert verdict.key == t.customer_id.encode() and verdict.timestamp == t.event_time_ms
        # and validating the output again gives the same record
        assert decide(verdict.value, TOPIC, 1, 99, timestamp, b"k")[:4] == verdict[:4]
    else:
        assert verdict.error_codes and set(verdict.error_codes) <= set(ERROR_CODES)
        assert list(verdict.error_codes) == sorted(verdict.error_codes, key=ERROR_CODES.index)
        log = ErrorLog.decode(verdict.value)
        assert log.error_codes == list(verdict.error_codes) == list(log.errors)
        assert all(log.errors.values())
        assert (log.source.partition, log.source.offset) == (1, 99)
        assert verdict.key == b"k"
        if value is not None:
            raw = log.raw.encode("utf-8", errors="surrogatepass")
            assert raw == value or log.raw_base64 is not None


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_exactly_one_output(value):
    check_one_output(value)


@FUZZ
@given(json_values)
def test_arbitrary_json_gives_exactly_one_output(obj):
    check_one_output(json.dumps(obj).encode())


def _base(seed: int) -> dict:
    return transaction_dict(random.Random(seed), EVENT_MS)


mutations = st.lists(
    st.tuples(
        st.sampled_from(("drop", "set", "add", "set_nested")), st.sampled_from(FIELDS), json_values
    ),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(st.integers(0, 10_000), mutations, st.integers(-3 * 86_400_000, 86_400_000))
def test_mutated_valid_records_give_exactly_one_output(seed, changes, skew_ms):
    obj = _base(seed)
    for kind, name, value in changes:
        if kind == "drop":
            obj.pop(name, None)
        elif kind == "set":
            obj[name] = value
        elif kind == "add":
            obj[f"x_{name}"] = value
        elif isinstance(obj.get(name), dict):
            obj[name]["os" if name == "device_info" else "lat"] = value
    value = encode(obj)
    check_one_output(value, EVENT_MS + skew_ms)
    # the fast reader and the diagnostic reader agree on validity
    fast = read_transaction(value)
    slow = inspect_transaction(obj)
    assert (fast is None) == (slow.transaction is None), slow.problems
    if fast is not None:
        assert fast == slow.transaction
    else:
        assert slow.problems


@FUZZ
@given(st.integers(0, 10_000), st.integers(0, 2000), st.binary(min_size=1, max_size=3))
def test_byte_level_corruption_gives_exactly_one_output(seed, position, junk):
    value = encode(_base(seed))
    position %= len(value)
    check_one_output(value[:position] + junk + value[position + len(junk) :])


@FUZZ
@given(st.integers(0, 10_000), st.one_of(st.none(), st.integers(-(2**40), 2**45)))
def test_any_record_timestamp_gives_exactly_one_output(seed, timestamp):
    check_one_output(encode(_base(seed)), timestamp)
