"""The simulated population: customers and merchants in real Iranian cities.

Transactions are drawn from a population, not independently, so that a customer's history has a
meaning the batch and streaming layers can rely on:

- a customer has a type (individual, CIP, business), a home city, a typical spend, an activity
  level, preferred payment methods, a phone (iOS/Android) and a computer, a base risk level and a
  few usual places (home, work, ...) a little apart inside the home city;
- a merchant has a category, a city, business hours (local time), a contracted commission type and
  a popularity. In-person payments go to a merchant of the home city that is open at that local
  hour; when none is, the customer pays online instead. OFF_HOURS_SHARE of in-person payments go
  to any merchant of the city, open or not, so the batch layer has off-hours payments to find.

Two properties are built in, because the fraud labels depend on them (see `fraud.py`):
- every location a customer pays from in the ordinary course lies within about 25 km of the home
  city's centre: in-person payments (pos, nfc) happen at a merchant of the home city, online and
  mobile payments at one of the customer's places. Only injected impossible travel leaves it.
- ordinary amounts lie between AMOUNT_NOISE_MIN and AMOUNT_NOISE_MAX times the customer's typical
  spend (times a category factor), a spread of less than 10×, so an ordinary amount never exceeds
  ten times the customer's average: only injected spikes do.

The population depends only on the seed, CUSTOMER_COUNT and MERCHANT_COUNT: a backfill and a live
generator started with the same seed share their customers and merchants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darooghe.schema import COMMISSION_TYPES, CUSTOMER_TYPES, MERCHANT_CATEGORIES, PAYMENT_METHODS


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lng: float
    population_m: float  # inhabitants, millions (rounded census figures): the sampling weight


CITIES: tuple[City, ...] = (
    City("Tehran", 35.6892, 51.3890, 8.69),
    City("Mashhad", 36.2605, 59.6168, 3.00),
    City("Isfahan", 32.6539, 51.6660, 1.96),
    City("Karaj", 35.8400, 50.9391, 1.59),
    City("Shiraz", 29.5918, 52.5837, 1.57),
    City("Tabriz", 38.0962, 46.2738, 1.56),
    City("Qom", 34.6401, 50.8764, 1.20),
    City("Ahvaz", 31.3183, 48.6706, 1.18),
    City("Kermanshah", 34.3142, 47.0650, 0.95),
    City("Urmia", 37.5527, 45.0761, 0.74),
    City("Rasht", 37.2808, 49.5832, 0.68),
    City("Zahedan", 29.4963, 60.8629, 0.59),
    City("Hamadan", 34.7992, 48.5146, 0.55),
    City("Kerman", 30.2839, 57.0834, 0.54),
    City("Yazd", 31.8974, 54.3569, 0.53),
    City("Ardabil", 38.2498, 48.2933, 0.53),
    City("Bandar Abbas", 27.1832, 56.2666, 0.53),
    City("Arak", 34.0917, 49.6892, 0.52),
    City("Qazvin", 36.2688, 50.0041, 0.40),
    City("Sari", 36.5633, 53.0601, 0.31),
)

EARTH_RADIUS_KM = 6371.0
#: Impossible travel goes to a city at least this far from home (the rule's threshold is 50 km).
FAR_CITY_KM = 300.0
#: Jitter (degrees) around a city centre: customers' homes and merchants (sd, clip), and around a
#: customer's home for the usual places. |lat|,|lng| offsets stay below 0.06+0.03 degrees.
CITY_JITTER_SD, CITY_JITTER_MAX = 0.03, 0.06
PLACE_JITTER_SD, PLACE_JITTER_MAX = 0.01, 0.03
PLACES_PER_CUSTOMER = 4
OFF_HOURS_SHARE = 0.01
VISITOR_POINTS_PER_CITY = 8

#: Per-transaction amount = typical spend × category factor × noise, noise log-normal (sd 0.35)
#: clipped to [AMOUNT_NOISE_MIN, AMOUNT_NOISE_MAX]. With the category factors below the largest
#: ordinary amount is at most 2.5·1.2/(0.4·0.85) = 8.8 times the smallest, i.e. under 10×.
AMOUNT_NOISE_SD, AMOUNT_NOISE_MIN, AMOUNT_NOISE_MAX = 0.35, 0.4, 2.5
CATEGORY_AMOUNT_FACTOR = {
    "retail": 1.0,
    "food_service": 0.85,
    "entertainment": 1.0,
    "transportation": 0.85,
    "government": 1.2,
}
AMOUNT_ROUNDING = 1000  # IRR: prices end in thousands
MIN_TYPICAL_SPEND = 100_000

CUSTOMER_TYPE_WEIGHTS = {"individual": 0.85, "CIP": 0.03, "business": 0.12}
#: median typical spend (IRR) and its log-sd across customers, per type
TYPICAL_SPEND = {"individual": (600_000, 0.7), "CIP": (10_000_000, 0.6), "business": (3_000_000, 0.7)}
ACTIVITY_FACTOR = {"individual": 1.0, "CIP": 1.5, "business": 2.5}
#: mean payment-method shares (online, pos, mobile, nfc) per type; each customer draws its own
#: preferences around them (Dirichlet, concentration 4)
METHOD_SHARES = {
    "individual": (0.30, 0.35, 0.25, 0.10),
    "CIP": (0.35, 0.30, 0.25, 0.10),
    "business": (0.55, 0.30, 0.10, 0.05),
}
BASE_RISK_WEIGHTS = {
    "individual": (0.30, 0.35, 0.20, 0.10, 0.05),
    "CIP": (0.50, 0.30, 0.15, 0.04, 0.01),
    "business": (0.35, 0.35, 0.20, 0.07, 0.03),
}

PHONES = {
    "Android": ("Samsung Galaxy S25", "Samsung Galaxy A55", "Xiaomi Redmi Note 13",
                "Xiaomi Poco X6", "Huawei Nova 12", "Google Pixel 9"),
    "iOS": ("iPhone 13", "iPhone 14 Pro", "iPhone 15", "iPhone 16 Pro Max"),
}
PHONE_OS_WEIGHTS = {"Android": 0.75, "iOS": 0.25}
COMPUTERS = {
    "Windows": ("Lenovo ThinkPad T14", "HP EliteBook 840", "Dell Latitude 5440", "ASUS VivoBook 15"),
    "macOS": ("MacBook Air M2", "MacBook Pro M3", "iMac M3"),
    "Linux": ("Dell XPS 13", "Lenovo ThinkPad X1 Carbon"),
}
COMPUTER_OS_WEIGHTS = {"Windows": 0.80, "macOS": 0.12, "Linux": 0.08}
APP_VERSIONS = ("2.3.0", "2.3.4", "2.4.0", "2.4.1", "2.5.0")

CATEGORY_WEIGHTS = {
    "retail": 0.35,
    "food_service": 0.30,
    "entertainment": 0.12,
    "transportation": 0.15,
    "government": 0.08,
}
#: contracted commission types (flat, progressive, tiered) per category
COMMISSION_TYPE_WEIGHTS = {
    "retail": (0.35, 0.35, 0.30),
    "food_service": (0.40, 0.25, 0.35),
    "entertainment": (0.30, 0.40, 0.30),
    "transportation": (0.50, 0.20, 0.30),
    "government": (0.80, 0.10, 0.10),
}
#: business hours (local): choices of opening and closing hour, open when open <= hour < close
BUSINESS_HOURS = {
    "retail": ((8, 9, 10), (20, 21, 22)),
    "food_service": ((7, 8, 11), (22, 23, 24)),
    "entertainment": ((10, 12, 14), (23, 24)),
    "transportation": ((0, 0, 5), (23, 24, 24)),
    "government": ((7, 8), (14, 15)),
}

METHOD_INDEX = {m: i for i, m in enumerate(PAYMENT_METHODS)}
ONLINE, POS, MOBILE, NFC = (METHOD_INDEX[m] for m in ("online", "pos", "mobile", "nfc"))
IN_PERSON = np.array([m in ("pos", "nfc") for m in PAYMENT_METHODS])


def haversine_km(lat1, lng1, lat2, lng2):
    """Great-circle distance (km, R = 6371) between points in degrees; works on numpy arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lng2) - np.asarray(lng1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _probs(weights: dict[str, float] | tuple, keys=None) -> np.ndarray:
    """Normalised weights: of a tuple, or of a dict in `keys` order (default: its own order)."""
    if isinstance(weights, dict):
        weights = [weights[k] for k in (keys if keys is not None else weights)]
    values = np.array(weights, dtype=float)
    return values / values.sum()


def _jitter(rng: np.random.Generator, n: int, sd: float, limit: float) -> np.ndarray:
    return np.clip(rng.normal(0.0, sd, n), -limit, limit)


class WeightedSegments:
    """Weighted choice inside one of many item lists, vectorised.

    Segment s holds items[s] with positive weights; `pick(u, s)` maps uniforms u in [0, 1) to one
    item of each requested segment with probability proportional to its weight. Empty segments
    are not allowed (callers fall back before asking).
    """

    def __init__(self, items: list[np.ndarray], weights: list[np.ndarray]) -> None:
        if any(len(i) == 0 for i in items):
            raise ValueError("WeightedSegments: every segment needs at least one item")
        self.items = np.concatenate(items).astype(np.int64)
        cumulative = np.cumsum(np.concatenate(weights).astype(np.float64))
        self.cumulative = cumulative
        lengths = np.array([len(i) for i in items])
        ends = np.cumsum(lengths)
        self.first = ends - lengths
        self.last = ends - 1
        self.base = np.where(self.first > 0, cumulative[np.maximum(self.first - 1, 0)], 0.0)
        self.total = cumulative[self.last] - self.base

    def pick(self, u: np.ndarray, segment: np.ndarray) -> np.ndarray:
        target = self.base[segment] + u * self.total[segment]
        pos = np.searchsorted(self.cumulative, target, side="right")
        pos = np.clip(pos, self.first[segment], self.last[segment])
        return self.items[pos]


class Locations:
    """All points a transaction can carry, with their exact JSON text and the floats it parses to."""

    def __init__(self, lat: np.ndarray, lng: np.ndarray) -> None:
        texts_lat = [f"{x:.4f}" for x in lat]
        texts_lng = [f"{x:.4f}" for x in lng]
        # The floats a JSON reader gets back, so the fraud labels use exactly what consumers see.
        self.lat = np.array([float(t) for t in texts_lat])
        self.lng = np.array([float(t) for t in texts_lng])
        self.json = np.array(
            [f'{{"lat":{a},"lng":{b}}}' for a, b in zip(texts_lat, texts_lng)], dtype=object
        )


class Population:
    """Customers and merchants for one seed; arrays indexed by customer / merchant number - 1."""

    def __init__(self, seed_seq: np.random.SeedSequence, customer_count: int, merchant_count: int) -> None:
        rng = np.random.default_rng(seed_seq)
        self.cities = CITIES
        city_lat = np.array([c.lat for c in CITIES])
        city_lng = np.array([c.lng for c in CITIES])
        city_pop = np.array([c.population_m for c in CITIES])
        self.city_distance_km = haversine_km(
            city_lat[:, None], city_lng[:, None], city_lat[None, :], city_lng[None, :]
        )
        # The draws come in this order from one generator: the same seed gives the same population.
        merchant_lat, merchant_lng = self._draw_merchants(
            rng, merchant_count, city_lat, city_lng, city_pop
        )
        self._draw_customers(rng, customer_count, city_pop)
        self._draw_devices(rng, customer_count)
        self._place_locations(rng, city_lat, city_lng, merchant_lat, merchant_lng)
        self._build_choice_tables(city_pop)

    def _draw_merchants(
        self,
        rng: np.random.Generator,
        m: int,
        city_lat: np.ndarray,
        city_lng: np.ndarray,
        city_pop: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merchants: city, category, commission type, business hours, popularity; their points."""
        n_cities = len(CITIES)
        self.merchant_count = m
        # The largest cities each get a merchant first, so in-person payments have somewhere to go.
        covered = min(m // 2, n_cities)
        order = np.argsort(-city_pop, kind="stable")
        merchant_city = np.concatenate(
            [order[:covered], rng.choice(n_cities, m - covered, p=city_pop / city_pop.sum())]
        )
        self.merchant_city = merchant_city.astype(np.int64)
        self.merchant_category = rng.choice(
            len(MERCHANT_CATEGORIES), m, p=_probs(CATEGORY_WEIGHTS, MERCHANT_CATEGORIES)
        )
        self.merchant_commission_type = np.empty(m, dtype=np.int64)
        self.merchant_open = np.empty(m, dtype=np.int64)
        self.merchant_close = np.empty(m, dtype=np.int64)
        for i in range(m):
            cat = MERCHANT_CATEGORIES[self.merchant_category[i]]
            self.merchant_commission_type[i] = rng.choice(
                len(COMMISSION_TYPES), p=_probs(COMMISSION_TYPE_WEIGHTS[cat])
            )
            opens, closes = BUSINESS_HOURS[cat]
            self.merchant_open[i] = opens[rng.integers(len(opens))]
            self.merchant_close[i] = closes[rng.integers(len(closes))]
        self.merchant_popularity = rng.lognormal(0.0, 0.8, m)
        merchant_lat = city_lat[merchant_city] + _jitter(rng, m, CITY_JITTER_SD, CITY_JITTER_MAX)
        merchant_lng = city_lng[merchant_city] + _jitter(rng, m, CITY_JITTER_SD, CITY_JITTER_MAX)
        self.merchant_ids = np.array([f"merch_{i + 1}" for i in range(m)], dtype=object)
        return merchant_lat, merchant_lng

    def _draw_customers(self, rng: np.random.Generator, n: int, city_pop: np.ndarray) -> None:
        """Customers: home city (one with a merchant), type, spend, activity, methods, risk."""
        n_cities = len(CITIES)
        self.customer_count = n
        has_merchant = np.zeros(n_cities, dtype=bool)
        has_merchant[self.merchant_city] = True
        self.city_has_merchant = has_merchant
        home_weights = np.where(has_merchant, city_pop, 0.0)
        self.home_city = rng.choice(n_cities, n, p=home_weights / home_weights.sum()).astype(np.int64)
        self.customer_type = rng.choice(
            len(CUSTOMER_TYPES), n, p=_probs(CUSTOMER_TYPE_WEIGHTS, CUSTOMER_TYPES)
        )
        types = [CUSTOMER_TYPES[t] for t in self.customer_type]
        median = np.array([TYPICAL_SPEND[t][0] for t in types], dtype=float)
        spread = np.array([TYPICAL_SPEND[t][1] for t in types])
        typical = median * np.exp(rng.normal(0.0, 1.0, n) * spread)
        self.typical_spend = np.maximum(
            MIN_TYPICAL_SPEND, np.round(typical / AMOUNT_ROUNDING) * AMOUNT_ROUNDING
        ).astype(np.int64)
        activity = (rng.gamma(2.0, 0.5, n) + 0.05) * np.array([ACTIVITY_FACTOR[t] for t in types])
        self.activity = activity / activity.sum()
        prefs = np.stack([rng.dirichlet(4.0 * np.array(METHOD_SHARES[t])) for t in types])
        self.method_cumulative = np.cumsum(prefs, axis=1)
        self.method_cumulative[:, -1] = 1.0
        self.base_risk = np.array(
            [rng.choice(5, p=_probs(BASE_RISK_WEIGHTS[t])) + 1 for t in types], dtype=np.int64
        )
        self.online_from_phone = rng.beta(2.0, 2.0, n)
        self.customer_ids = np.array([f"cust_{i + 1}" for i in range(n)], dtype=object)
        self.customer_type_names = np.array(types, dtype=object)

    def _draw_devices(self, rng: np.random.Generator, n: int) -> None:
        """One phone and one computer per customer, as device_info JSON fragments (0 is `{}`)."""
        phone_os = rng.choice(list(PHONE_OS_WEIGHTS), n, p=_probs(PHONE_OS_WEIGHTS))
        computer_os = rng.choice(list(COMPUTER_OS_WEIGHTS), n, p=_probs(COMPUTER_OS_WEIGHTS))
        app = rng.choice(len(APP_VERSIONS), n)
        phone_model = [PHONES[o][rng.integers(len(PHONES[o]))] for o in phone_os]
        computer_model = [COMPUTERS[o][rng.integers(len(COMPUTERS[o]))] for o in computer_os]
        self.device_json = np.array(
            ["{}"]
            + [_device(o, APP_VERSIONS[a], d) for o, a, d in zip(phone_os, app, phone_model)]
            + [_device(o, APP_VERSIONS[a], d) for o, a, d in zip(computer_os, app, computer_model)],
            dtype=object,
        )
        self.phone_device = 1 + np.arange(n)
        self.computer_device = 1 + n + np.arange(n)

    def _place_locations(
        self,
        rng: np.random.Generator,
        city_lat: np.ndarray,
        city_lng: np.ndarray,
        merchant_lat: np.ndarray,
        merchant_lng: np.ndarray,
    ) -> None:
        """Customers' homes and usual spots, visitor points per city: the one location table."""
        n, m, n_cities = self.customer_count, self.merchant_count, len(CITIES)
        home_lat = city_lat[self.home_city] + _jitter(rng, n, CITY_JITTER_SD, CITY_JITTER_MAX)
        home_lng = city_lng[self.home_city] + _jitter(rng, n, CITY_JITTER_SD, CITY_JITTER_MAX)
        k = PLACES_PER_CUSTOMER
        place_lat = home_lat[:, None] + _jitter(rng, n * k, PLACE_JITTER_SD, PLACE_JITTER_MAX).reshape(n, k)
        place_lng = home_lng[:, None] + _jitter(rng, n * k, PLACE_JITTER_SD, PLACE_JITTER_MAX).reshape(n, k)
        v = VISITOR_POINTS_PER_CITY
        visitor_lat = np.repeat(city_lat, v) + _jitter(rng, n_cities * v, 0.02, 0.04)
        visitor_lng = np.repeat(city_lng, v) + _jitter(rng, n_cities * v, 0.02, 0.04)

        # one location table: merchants, then customers' places, then visitor points per city
        self.locations = Locations(
            np.concatenate([merchant_lat, place_lat.ravel(), visitor_lat]),
            np.concatenate([merchant_lng, place_lng.ravel(), visitor_lng]),
        )
        self.merchant_location = np.arange(m)
        self.place_location = m + np.arange(n * k).reshape(n, k)
        self.visitor_location = m + n * k + np.arange(n_cities * v).reshape(n_cities, v)

    def _build_choice_tables(self, city_pop: np.ndarray) -> None:
        """The weighted choices of customers, online and in-person merchants and far cities."""
        n, m, n_cities = self.customer_count, self.merchant_count, len(CITIES)
        merchant_city, has_merchant = self.merchant_city, self.city_has_merchant
        self._customers = WeightedSegments([np.arange(n)], [self.activity])
        merchants_all = np.arange(m)
        self._online = WeightedSegments([merchants_all], [self.merchant_popularity])
        # in-person: merchants of a city open at a local hour; `open_somewhere[city, hour]` says
        # whether there is one (the segment then holds a placeholder the caller must not use)
        seg_items, seg_weights = [], []
        self.open_somewhere = np.zeros((n_cities, 24), dtype=bool)
        for city in range(n_cities):
            in_city = merchants_all[merchant_city == city]
            for hour in range(24):
                open_now = in_city[
                    (self.merchant_open[in_city] <= hour) & (hour < self.merchant_close[in_city])
                ]
                self.open_somewhere[city, hour] = len(open_now) > 0
                chosen = open_now if len(open_now) else merchants_all[:1]
                seg_items.append(chosen)
                seg_weights.append(self.merchant_popularity[chosen])
        self._in_person = WeightedSegments(seg_items, seg_weights)
        # impossible travel: far cities that have a merchant (else any far city, paid online)
        far_items, far_weights, self.far_has_merchant = [], [], np.zeros(n_cities, dtype=bool)
        for city in range(n_cities):
            far = np.flatnonzero(self.city_distance_km[city] >= FAR_CITY_KM)
            with_merchant = far[has_merchant[far]]
            if len(with_merchant):
                far, self.far_has_merchant[city] = with_merchant, True
            far_items.append(far)
            far_weights.append(city_pop[far])
        self._far_city = WeightedSegments(far_items, far_weights)
        self._city_merchants = WeightedSegments(
            [merchants_all[merchant_city == c] if has_merchant[c] else merchants_all for c in range(n_cities)],
            [self.merchant_popularity[merchant_city == c] if has_merchant[c] else self.merchant_popularity
             for c in range(n_cities)],
        )

    # --- vectorised choices (u: uniforms in [0, 1)) ---------------------------------------------
    def pick_customers(self, u: np.ndarray) -> np.ndarray:
        return self._customers.pick(u, np.zeros(len(u), dtype=np.int64))

    def pick_methods(self, u: np.ndarray, customers: np.ndarray) -> np.ndarray:
        return (u[:, None] >= self.method_cumulative[customers]).sum(axis=1)

    def pick_online_merchants(self, u: np.ndarray) -> np.ndarray:
        return self._online.pick(u, np.zeros(len(u), dtype=np.int64))

    def pick_in_person_merchants(self, u: np.ndarray, cities: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """A merchant of each city open at that local hour (where `open_somewhere` holds)."""
        return self._in_person.pick(u, cities * 24 + hours)

    def pick_far_cities(self, u: np.ndarray, home_cities: np.ndarray) -> np.ndarray:
        return self._far_city.pick(u, home_cities)

    def pick_city_merchants(self, u: np.ndarray, cities: np.ndarray) -> np.ndarray:
        return self._city_merchants.pick(u, cities)

    # --- descriptions, for people and for other layers ------------------------------------------
    def merchants(self) -> list[dict]:
        """The merchant register (darooghe.merchant_reference.FIELDS), published with the events."""
        return [
            {
                "merchant_id": self.merchant_ids[i],
                "merchant_category": MERCHANT_CATEGORIES[self.merchant_category[i]],
                "city": CITIES[self.merchant_city[i]].name,
                "location": {
                    "lat": float(self.locations.lat[self.merchant_location[i]]),
                    "lng": float(self.locations.lng[self.merchant_location[i]]),
                },
                "commission_type": COMMISSION_TYPES[self.merchant_commission_type[i]],
                "open_hour": int(self.merchant_open[i]),
                "close_hour": int(self.merchant_close[i]),
            }
            for i in range(self.merchant_count)
        ]

    def customers(self) -> list[dict]:
        return [
            {
                "customer_id": self.customer_ids[i],
                "customer_type": self.customer_type_names[i],
                "home_city": CITIES[self.home_city[i]].name,
                "typical_spend": int(self.typical_spend[i]),
            }
            for i in range(self.customer_count)
        ]


def _device(os_name: str, app_version: str, model: str) -> str:
    return f'{{"os":"{os_name}","app_version":"{app_version}","device_model":"{model}"}}'


def nearest_city(lat: float, lng: float) -> tuple[City, float]:
    """The closest city of CITIES and its distance in km."""
    d = [float(haversine_km(lat, lng, c.lat, c.lng)) for c in CITIES]
    i = int(np.argmin(d))
    return CITIES[i], d[i]


#: The largest ordinary amount of a customer over the smallest (before rounding to 1000 IRR,
#: which with MIN_TYPICAL_SPEND moves it below 9): must stay under the AMOUNT_ANOMALY factor 10.
ORDINARY_AMOUNT_SPREAD = (AMOUNT_NOISE_MAX * max(CATEGORY_AMOUNT_FACTOR.values())) / (
    AMOUNT_NOISE_MIN * min(CATEGORY_AMOUNT_FACTOR.values())
)
assert ORDINARY_AMOUNT_SPREAD < 9.5, "ordinary amounts must stay within a 10x spread"
