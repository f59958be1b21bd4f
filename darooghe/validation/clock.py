"""The clock-skew allowance: how far ahead of the validator's own clock an event time may be.

The broker accepts a CreateTime up to `message.timestamp.after.max.ms` in the future (1 h by
default), and ERR_TIME compares the event time with that CreateTime, so a record dated almost an
hour ahead used to pass and push every event-time watermark downstream an hour forward. So the
event time is also compared with the validator's clock, allowing DAROOGHE_CLOCK_SKEW_MS (default
60 s: NTP-synced hosts are milliseconds apart, and a producer's batch is seconds old), and the
project's topics are created with message.timestamp.after.max.ms set to the same allowance.

What still passes can be up to the allowance ahead, so the streaming jobs' watermarks trail the
newest event time by the allowed lateness plus the allowance (`watermark_delay_ms`): one record
dated the furthest ahead that passes then makes no on-time event late.
"""

from __future__ import annotations

DEFAULT_CLOCK_SKEW_MS = 60 * 1000
#: The largest allowance accepted: more would let one record hold event time a day ahead.
MAX_CLOCK_SKEW_MS = 24 * 60 * 60 * 1000


def watermark_delay_ms(allowed_lateness_ms: int, settings) -> int:
    """The streaming watermark delay: the allowed lateness plus the clock-skew allowance, so an
    event dated as far ahead as validation lets pass cannot make on-time events late."""
    return allowed_lateness_ms + settings.clock_skew_ms
