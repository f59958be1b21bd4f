"""The arrival process: λ(t) as documented, and seeded long runs statistically consistent with it.

The long runs sample arrival times only (the engine writes exactly these times), two weeks at 100
events/min, about two million arrivals.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from darooghe.generator.intensity import Intensity, local_clock

TEHRAN = ZoneInfo("Asia/Tehran")
RATE, PEAK = 100.0, 2.5
#: a local Saturday 00:00 in Tehran, so days and weeks of the run are whole local days
START = datetime(2026, 3, 21, 0, 0, tzinfo=TEHRAN).timestamp()
WEEKS = 2
SPAN = WEEKS * 7 * 86400


def chi2_sf(stat: float, dof: int) -> float:
    """P(X >= stat) for chi-square(dof), Wilson–Hilferty normal approximation (dof > 30)."""
    z = ((stat / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))


def integrate(lam: Intensity, edges: np.ndarray, step: float = 5.0) -> np.ndarray:
    """∫λ over each [edges[i], edges[i+1]) by the midpoint rule on `step`-second cells."""
    per_cell = round(float(edges[1] - edges[0]) / step)
    mids = edges[0] + step * (np.arange(per_cell * (len(edges) - 1)) + 0.5)
    return (lam.per_second(mids) * step).reshape(len(edges) - 1, per_cell).sum(axis=1)


@pytest.fixture(scope="module")
def arrivals():
    lam = Intensity(RATE, PEAK)
    rng = np.random.default_rng(20260321)
    # sample in one-hour pieces, as the engine does in chunks
    parts = [lam.sample(rng, START + h * 3600, START + (h + 1) * 3600) for h in range(SPAN // 3600)]
    return lam, np.concatenate(parts)


def test_intensity_follows_the_documented_table():
    lam = Intensity(RATE, PEAK)
    g = [.30, .15, .05, .00, .00, .03, .12, .30, .55, .75, .90, .98,  # the docstring's table
         1.00, .92, .75, .68, .72, .82, .92, .98, 1.00, .90, .70, .50]
    w = [1.05, 1.00, 1.00, 1.00, 1.00, 0.80, 0.55]  # Saturday .. Friday
    base = RATE / ((1 + (PEAK - 1) * sum(g) / 24) * (sum(w) / 7))

    def at(day: int, hour: float) -> float:  # 2026-03-21 is a Saturday
        local = datetime(2026, 3, 21, tzinfo=TEHRAN) + timedelta(days=day, hours=hour)
        return float(lam.per_minute(np.array([local.timestamp()]))[0])

    assert at(0, 12) == pytest.approx(base * 1.05 * PEAK)  # Saturday noon: the peak
    assert at(6, 3.5) == pytest.approx(base * 0.55)  # Friday night: quiet level, weekend
    assert at(5, 20) == pytest.approx(base * 0.80 * PEAK)  # Thursday evening peak
    assert at(4, 14.5) == pytest.approx(base * (1 + (PEAK - 1) * (0.75 + 0.68) / 2))  # Wednesday
    assert at(1, 12) / at(1, 4) == pytest.approx(PEAK)  # peak over the quiet level


@pytest.mark.parametrize("rate,peak", [(10, 1.0), (100, 2.5), (1000, 5.0)])
def test_event_rate_is_the_weekly_mean_of_the_intensity(rate, peak):
    lam = Intensity(rate, peak)
    week = integrate(lam, np.array([START, START + 7 * 86400]), step=1.0)[0]
    assert week / (7 * 24 * 60) == pytest.approx(rate, rel=1e-6)


def test_local_time_uses_the_tehran_zone_including_old_dst_years():
    rng = np.random.default_rng(1)
    t = np.floor(rng.uniform(datetime(2019, 1, 1).timestamp(), datetime(2027, 1, 1).timestamp(), 5000))
    weekday, hour = local_clock(t)
    for ts, wd, h in zip(t.tolist(), weekday.tolist(), hour.tolist()):
        local = datetime.fromtimestamp(ts, UTC).astimezone(TEHRAN)
        assert wd == local.weekday()
        assert h == pytest.approx(local.hour + local.minute / 60 + local.second / 3600)


def test_long_run_mean_is_event_rate(arrivals):
    _, t = arrivals
    expected = RATE * SPAN / 60
    assert abs(len(t) - expected) < 4 * math.sqrt(expected)
    assert np.all(np.diff(t) >= 0) and t[0] >= START and t[-1] < START + SPAN


def test_hourly_counts_match_the_intensity_chi_square(arrivals):
    lam, t = arrivals
    edges = START + 3600.0 * np.arange(SPAN // 3600 + 1)
    observed = np.histogram(t, bins=edges)[0]
    expected = integrate(lam, edges)
    stat = float(np.sum((observed - expected) ** 2 / expected))
    p = chi2_sf(stat, len(observed))
    assert 0.001 < p < 0.999, (stat, p)


def test_minute_counts_are_poisson_dispersed_within_each_hour(arrivals):
    lam, t = arrivals
    edges = START + 60.0 * np.arange(SPAN // 60 + 1)
    observed = np.histogram(t, bins=edges)[0].reshape(-1, 60)
    expected = integrate(lam, edges).reshape(-1, 60)
    # against λ: neither over- nor under-dispersed
    stat = float(np.sum((observed - expected) ** 2 / expected))
    p = chi2_sf(stat, observed.size)
    assert 0.001 < p < 0.999, (stat, p)
    # within each hour the 60 minute counts scatter around λ like Poisson counts: the hour's
    # statistic is chi-square(60), mean 60 and variance 120 (the counts' own variance/mean would
    # also hold λ's trend inside the hour, up to 23% at 07:00–08:00)
    per_hour = ((observed - expected) ** 2 / expected).sum(axis=1)
    assert per_hour.mean() / 60 == pytest.approx(1.0, abs=0.03)
    assert per_hour.var(ddof=1) / 120 == pytest.approx(1.0, abs=0.3)


def test_weekly_cycle_friday_dip_and_light_thursday(arrivals):
    _, t = arrivals
    day = ((t - START) // 86400).astype(int) % 7  # 0 = Saturday
    counts = np.bincount(day, minlength=7) / WEEKS
    saturday, wednesday, thursday, friday = counts[0], counts[4], counts[5], counts[6]
    assert friday == counts.min()
    assert friday / wednesday == pytest.approx(0.55, abs=0.02)
    assert thursday / wednesday == pytest.approx(0.80, abs=0.02)
    assert saturday / wednesday == pytest.approx(1.05, abs=0.02)


def test_daily_cycle_peaks_at_noon_and_evening(arrivals):
    _, t = arrivals
    hour = (((t - START) % 86400) // 3600).astype(int)
    counts = np.bincount(hour, minlength=24)
    quiet = counts[3]
    assert counts[12] / quiet == pytest.approx(PEAK, rel=0.1)
    assert counts[20] / quiet == pytest.approx(PEAK * 0.99, rel=0.1)
    assert counts.argmin() in (3, 4)
