"""The arrival intensity λ(t) of the generator and its exact sampling (Poisson thinning).

Transactions arrive as a non-homogeneous Poisson process whose intensity follows the payment day
of Tehran, evaluated in local time (zoneinfo "Asia/Tehran"):

    λ(t) = base · w(weekday(t)) · d(hour(t))            events per minute
    d(h) = 1 + (PEAK_FACTOR − 1) · g(h)                  daily cycle, 1 (quiet) .. PEAK_FACTOR (peak)
    base = EVENT_RATE / (mean(d) · mean(w))              so EVENT_RATE is the long-run mean

g is the daily shape, piecewise linear between its values at each full local hour (periodic):

    hour  00   01   02   03   04   05   06   07   08   09   10   11
    g    .30  .15  .05  .00  .00  .03  .12  .30  .55  .75  .90  .98
    hour  12   13   14   15   16   17   18   19   20   21   22   23
    g   1.00  .92  .75  .68  .72  .82  .92  .98 1.00  .90  .70  .50

so the night (03:00–04:00) is the quiet level, the business peak is reached at 12:00 and again with
the evening shopping at 20:00, with a lull after lunch. mean(g) = sum(g)/24 exactly (a periodic
piecewise-linear function averages its knots), hence mean(d) = 1 + (PEAK_FACTOR − 1)·mean(g).

w is the weekly cycle by local weekday. The Iranian weekend is Friday; Thursday is a half working
day; Saturday is the first and busiest working day:

    Sat 1.05   Sun 1.00   Mon 1.00   Tue 1.00   Wed 1.00   Thu 0.80   Fri 0.55

Over any whole local week the integral of λ is 7·24·60·EVENT_RATE, i.e. EVENT_RATE is the long-run
mean per minute. (Asia/Tehran has had no daylight saving since 2022; in an older year with DST a
week holds one hour more or less of local time, which the formula follows as it is.)

Sampling is exact thinning (Lewis & Shedler): candidates of a homogeneous process at the maximum
rate λ̄ = base·PEAK_FACTOR·max(w) are drawn in bulk (uniform order statistics from normalised
exponential spacings, no sort), and each is kept with probability λ(t)/λ̄. Nothing sleeps a fixed
interval; live mode sleeps until each sampled arrival time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

TIMEZONE = "Asia/Tehran"
TZ = ZoneInfo(TIMEZONE)

#: g at local hours 0..23 (the daily shape; see the module docstring).
DAILY_SHAPE = np.array(
    [0.30, 0.15, 0.05, 0.00, 0.00, 0.03, 0.12, 0.30, 0.55, 0.75, 0.90, 0.98,
     1.00, 0.92, 0.75, 0.68, 0.72, 0.82, 0.92, 0.98, 1.00, 0.90, 0.70, 0.50]
)
#: w by ISO weekday index, Monday=0 .. Sunday=6 (see the module docstring).
WEEKLY_FACTOR = np.array([1.00, 1.00, 1.00, 0.80, 0.55, 1.05, 1.00])
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Time-zone offsets are looked up per 15-minute UTC bucket: every offset change of Asia/Tehran
#: (and of any zone in the tz database today) happens on a quarter-hour boundary in UTC.
_OFFSET_BUCKET_S = 900


@lru_cache(maxsize=65536)
def _offset_of_bucket(bucket: int) -> int:
    moment = datetime.fromtimestamp(bucket * _OFFSET_BUCKET_S, tz=UTC)
    return int(moment.astimezone(TZ).utcoffset().total_seconds())


def utc_offsets(t: np.ndarray) -> np.ndarray:
    """Asia/Tehran UTC offset in seconds at each epoch second of `t`."""
    buckets = np.floor_divide(t, _OFFSET_BUCKET_S).astype(np.int64)
    if buckets.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(buckets.min()), int(buckets.max())
    table = np.array([_offset_of_bucket(b) for b in range(lo, hi + 1)], dtype=np.int64)
    return table[buckets - lo]


def local_clock(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weekday Monday=0, fractional hour 0..24) in Asia/Tehran for epoch seconds `t`."""
    local = np.asarray(t, dtype=np.float64) + utc_offsets(np.asarray(t, dtype=np.float64))
    days = np.floor_divide(local, 86400.0)
    # 1970-01-01 was a Thursday (weekday 3).
    weekday = ((days.astype(np.int64) + 3) % 7).astype(np.int64)
    hour = (local - days * 86400.0) / 3600.0
    return weekday, hour


def daily_shape(hour: np.ndarray) -> np.ndarray:
    """g(h): linear interpolation between the hourly knots, periodic over 24 hours."""
    h0 = np.floor(hour).astype(np.int64) % 24
    frac = hour - np.floor(hour)
    return DAILY_SHAPE[h0] * (1.0 - frac) + DAILY_SHAPE[(h0 + 1) % 24] * frac


class Intensity:
    """λ(t) for one EVENT_RATE and PEAK_FACTOR; times are epoch seconds (UTC)."""

    def __init__(self, event_rate: float, peak_factor: float) -> None:
        self.event_rate = float(event_rate)
        self.peak_factor = float(peak_factor)
        self.mean_daily = 1.0 + (self.peak_factor - 1.0) * float(DAILY_SHAPE.mean())
        self.mean_weekly = float(WEEKLY_FACTOR.mean())
        #: events per minute at the quiet level of an average weekday (w = 1)
        self.base_per_minute = self.event_rate / (self.mean_daily * self.mean_weekly)
        #: λ̄, the thinning bound, in events per second
        self.max_per_second = (
            self.base_per_minute * self.peak_factor * float(WEEKLY_FACTOR.max()) / 60.0
        )

    def per_minute(self, t: np.ndarray) -> np.ndarray:
        """λ(t) in events per minute at epoch seconds `t`."""
        weekday, hour = local_clock(np.asarray(t, dtype=np.float64))
        daily = 1.0 + (self.peak_factor - 1.0) * daily_shape(hour)
        return self.base_per_minute * WEEKLY_FACTOR[weekday] * daily

    def per_second(self, t: np.ndarray) -> np.ndarray:
        return self.per_minute(t) / 60.0

    def expected_events(self, start: float, end: float, step: float = 10.0) -> float:
        """∫ λ over [start, end) (epoch seconds), by the midpoint rule on `step`-second cells.

        λ is piecewise linear between knots on whole local hours, so the rule is exact except in
        the few cells that straddle a knot or a change of weekday (relative error ~1e-6).
        """
        if end <= start:
            return 0.0
        n = int(np.ceil((end - start) / step))
        edges = np.minimum(start + step * np.arange(n + 1), end)
        mids = (edges[:-1] + edges[1:]) / 2.0
        return float(np.sum(self.per_second(mids) * np.diff(edges)))

    def sample(self, rng: np.random.Generator, start: float, end: float) -> np.ndarray:
        """Arrival times (epoch seconds, sorted) of the process on [start, end): exact thinning."""
        span = end - start
        if span <= 0:
            return np.zeros(0)
        n = int(rng.poisson(self.max_per_second * span))
        if n == 0:
            return np.zeros(0)
        # n sorted uniforms on [0, 1): normalised partial sums of n+1 exponential spacings.
        spacings = rng.exponential(1.0, n + 1)
        cumulative = np.cumsum(spacings)
        candidates = start + span * (cumulative[:-1] / cumulative[-1])
        keep = rng.random(n) * self.max_per_second < self.per_second(candidates)
        return candidates[keep]
