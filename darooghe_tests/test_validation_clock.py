"""ERR_TIME also holds the event time against the validator's own clock: the broker accepts a
CreateTime up to an hour ahead, so a record dated now + 59 min with a matching CreateTime used to
pass and move every event-time watermark downstream an hour forward."""

from __future__ import annotations

import datetime as dt
import random

from darooghe.schema import ERR_TIME, epoch_ms
from darooghe.validation import ErrorLog, decide
from darooghe.validation.clock import DEFAULT_CLOCK_SKEW_MS, watermark_delay_ms
from darooghe.validation.samples import encode, transaction_dict

NOW = dt.datetime(2026, 12, 2, 18, 0, tzinfo=dt.UTC)
NOW_MS = epoch_ms(NOW)


def _verdict(event_ms: int, skew_ms: int = DEFAULT_CLOCK_SKEW_MS):
    value = encode(transaction_dict(random.Random(3), event_ms))
    # the producer set CreateTime = the event time, as a replay tool would
    return decide(value, "t", 0, 1, event_ms, b"k", NOW, clock_skew_ms=skew_ms)


def test_event_59_minutes_ahead_of_the_validator_clock_is_err_time():
    verdict = _verdict(NOW_MS + 59 * 60_000)
    assert verdict.error_codes == (ERR_TIME,)
    detail = ErrorLog.decode(verdict.value).errors[ERR_TIME]
    assert "after the validator's clock" in detail and "DAROOGHE_CLOCK_SKEW_MS" in detail


def test_the_skew_allowance_passes_exactly_and_is_a_setting():
    assert _verdict(NOW_MS + DEFAULT_CLOCK_SKEW_MS).valid
    assert _verdict(NOW_MS + DEFAULT_CLOCK_SKEW_MS + 1).error_codes == (ERR_TIME,)
    assert _verdict(NOW_MS + 10 * 60_000, skew_ms=10 * 60_000).valid


def test_watermarks_trail_by_the_lateness_plus_the_allowance(settings):
    assert watermark_delay_ms(120_000, settings) == 120_000 + settings.clock_skew_ms


def test_project_topics_refuse_timestamps_beyond_the_allowance(stack, unique_topic):
    from confluent_kafka import Producer
    from confluent_kafka.admin import ConfigResource

    from darooghe.kafka_io import admin_client, producer_config

    topic = unique_topic("test.clock", 1)
    admin = admin_client(stack)
    (future,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    assert future.result(10)["message.timestamp.after.max.ms"].value == str(stack.clock_skew_ms)
    errors = []
    producer = Producer(producer_config(stack))
    ahead = int(dt.datetime.now(dt.UTC).timestamp() * 1000) + stack.clock_skew_ms + 600_000
    producer.produce(topic, b"x", timestamp=ahead, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(30)
    assert errors and errors[0] is not None and "timestamp" in str(errors[0]).lower()


def test_existing_topics_get_the_limit_too(stack):
    import uuid

    from confluent_kafka.admin import ConfigResource, NewTopic

    from darooghe.kafka_io import admin_client, ensure_topics
    from darooghe.topics import Topic

    name = f"test.clock.old.{uuid.uuid4().hex[:8]}"
    admin = admin_client(stack)
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)  # as an older release made it
    assert ensure_topics([Topic(name, 1, "test topic")], stack) == {name: "exists"}
    (cfg,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
    assert cfg.result(10)["message.timestamp.after.max.ms"].value == str(stack.clock_skew_ms)
