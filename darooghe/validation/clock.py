"""The clock-skew allowance: how far ahead of the validator's own clock an event time may be.

The broker accepts a CreateTime up to `message.timestamp.after.max.ms` in the future (1 h by
default), and ERR_TIME compares the event time with that CreateTime, so a record dated almost an
hour ahead used to pass and push every event-time watermark downstream an hour forward. So the
event time is also compared with the validator's clock, allowing DAROOGHE_CLOCK_SKEW_MS (default
5 minutes: NTP-synced hosts are milliseconds apart, and a generator's batch is seconds old), and
the project's topics are created with message.timestamp.after.max.ms set to the same allowance.
"""

from __future__ import annotations

DEFAULT_CLOCK_SKEW_MS = 5 * 60 * 1000
#: The largest allowance accepted: more would let one record hold event time a day ahead.
MAX_CLOCK_SKEW_MS = 24 * 60 * 60 * 1000
