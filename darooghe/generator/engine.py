"""The event engine: one time chunk of arrivals in, finished and labelled events out.

A chunk [start, end) is produced in bulk with numpy, in this order: arrival times (exact thinning
of λ), marks (ordinary, fraud pattern, invalid kind), customers (velocity bursts and impossible
travel reassign some), then everything that depends on the customer and the local time —
payment method from the customer's preferences, merchant (in person: a merchant of the home city
open at that hour, else the customer pays online), place, device, amount, status, risk — then
the spikes' amounts and the rule labels (fraud.py), then commission and VAT from
darooghe.commission, then the invalid corruptions (invalid.py). Chunks follow each other with a `Carry`, so the result does not depend
on where the chunk boundaries fall except through the random stream itself.

Random numbers come from one seeded stream per role (population; events), so the same seed, the
same parameters and the same chunk boundaries give the same events, to the byte.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from darooghe import commission as commission_rules
from darooghe.generator import fraud, invalid
from darooghe.generator.ids import iso_millis, random_uuid_bytes, uuid_sort_keys, uuid_strings
from darooghe.generator.intensity import Intensity, local_clock
from darooghe.generator.params import GeneratorParams
from darooghe.generator.population import (
    AMOUNT_NOISE_MAX,
    AMOUNT_NOISE_MIN,
    AMOUNT_NOISE_SD,
    AMOUNT_ROUNDING,
    CATEGORY_AMOUNT_FACTOR,
    IN_PERSON,
    MOBILE,
    NFC,
    OFF_HOURS_SHARE,
    ONLINE,
    PLACES_PER_CUSTOMER,
    POS,
    VISITOR_POINTS_PER_CITY,
    Population,
)
from darooghe.schema import (
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    FAILURE_REASONS,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
    STATUSES,
)

#: share of transactions left pending (the rest of the non-declined ones are approved)
PENDING_RATE = 0.01
#: why declined payments fail (cancelled, insufficient_funds, system_error, fraud_prevented)
FAILURE_REASON_WEIGHTS = np.array([0.25, 0.45, 0.15, 0.15])
#: per-event risk around the customer's base level: -1, 0, +1
RISK_JITTER = (np.array([-1, 0, 1]), np.array([0.15, 0.70, 0.15]))

APPROVED, DECLINED, PENDING = (STATUSES.index(s) for s in ("approved", "declined", "pending"))
_CATEGORY_FACTOR = np.array([CATEGORY_AMOUNT_FACTOR[c] for c in MERCHANT_CATEGORIES])


@dataclass
class Batch:
    """One chunk of finished events, in arrival (event time) order."""

    t_ms: np.ndarray  # arrival time = event time (ERR_TIME rows write a drifted time instead)
    value_t_ms: np.ndarray  # the time written in the JSON
    customer: np.ndarray
    merchant: np.ndarray
    method: np.ndarray
    amount: np.ndarray
    location: np.ndarray
    device: np.ndarray
    status: np.ndarray
    reason: np.ndarray  # index into FAILURE_REASONS, -1 when not declined
    risk: np.ndarray
    commission: np.ndarray
    vat: np.ndarray
    total: np.ndarray
    ids: list[str]
    marks: np.ndarray
    bits: np.ndarray  # rule label bits (valid rows)
    schema_variant: np.ndarray  # which malformation (ERR_SCHEMA rows; 0 elsewhere)
    schema_choice: np.ndarray  # its detail (field, cut position, ...)

    def __len__(self) -> int:
        return len(self.t_ms)

    def take(self, rows: slice) -> Batch:  # a slice works on the arrays and on the ids list
        """The events of `rows` as a Batch of their own (live mode emits a chunk piecewise)."""
        return Batch(**{name: value[rows] for name, value in self.__dict__.items()})

    def labels(self) -> list[str | None]:
        """The `darooghe-label` header of each row (None: no header)."""
        text = np.array(fraud.LABEL_TEXT, dtype=object)[self.bits]
        for mark, name in fraud.INVALID_LABELS.items():
            text[self.marks == mark] = name
        return text.tolist()


class Engine:
    """Produces consecutive chunks of events for one set of parameters."""

    def __init__(self, params: GeneratorParams, live_prior: bool = False) -> None:
        self.params = params
        population_seed, events_seed = np.random.SeedSequence(params.seed).spawn(2)
        self.population = Population(population_seed, params.customer_count, params.merchant_count)
        self.intensity = Intensity(params.event_rate, params.peak_factor)
        self.rng = np.random.default_rng(events_seed)
        self.carry = (
            fraud.Carry.with_live_prior(self.population)
            if live_prior
            else fraud.Carry.empty(params.customer_count)
        )
        self.thresholds = fraud.mark_thresholds(params.fraud_rate, params.invalid_rates())
        self.counts: Counter[str] = Counter()
        self._commission_cache: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------------------------------
    def chunk(self, start_ms: int, end_ms: int) -> Batch:
        """The events of [start_ms, end_ms). Every random draw comes from self.rng in a fixed
        order (the helpers below are called in it): a seed and the chunk bounds give the same
        events."""
        rng, pop = self.rng, self.population
        t = self.intensity.sample(rng, start_ms / 1000.0, end_ms / 1000.0)
        t_ms = np.clip(np.floor(t * 1000.0).astype(np.int64), start_ms, end_ms - 1)
        n = len(t_ms)

        marks = fraud.draw_marks(rng.random(n), self.thresholds)
        customer = pop.pick_customers(rng.random(n))
        burst_sizes = rng.choice(fraud.BURST_SIZES, int(np.sum(marks == fraud.BURST_START)))
        fraud.assign_bursts(marks, customer, burst_sizes, self.carry)
        travel_rows = fraud.assign_travel(marks, customer, t_ms, self.carry)

        home = pop.home_city[customer]
        method, merchant, location, device = self._where_and_how(t_ms, customer, home)
        if len(travel_rows):
            self._travel_far(travel_rows, customer, home, method, merchant, location, device)
        amount = self._amounts(customer, merchant)
        status, reason, risk = self._outcomes(customer)
        id_bytes = random_uuid_bytes(rng, n)
        spike_factor = rng.uniform(*fraud.SPIKE_FACTOR, size=int(np.sum(marks == fraud.SPIKE)))
        bits = self._label_fraud(
            marks, t_ms, customer, id_bytes, location, amount, status, spike_factor, end_ms
        )
        value_t_ms, commission, vat, total, schema_variant, schema_choice = self._corrupt_invalid(
            marks, t_ms, customer, merchant, method, device, amount
        )
        batch = Batch(
            t_ms=t_ms, value_t_ms=value_t_ms, customer=customer, merchant=merchant, method=method,
            amount=amount, location=location, device=device, status=status, reason=reason,
            risk=risk, commission=commission, vat=vat, total=total, ids=uuid_strings(id_bytes),
            marks=marks, bits=bits, schema_variant=schema_variant, schema_choice=schema_choice,
        )
        self._count(batch)
        return batch

    def _where_and_how(
        self, t_ms: np.ndarray, customer: np.ndarray, home: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Payment method, merchant, location and device of each event (in person at a merchant
        open in the home city, or online from one of the customer's places)."""
        rng, pop, n = self.rng, self.population, len(t_ms)
        _, hour = local_clock(t_ms / 1000.0)
        local_hour = np.floor(hour).astype(np.int64)
        method = pop.pick_methods(rng.random(n), customer)
        off_hours = rng.random(n) < OFF_HOURS_SHARE
        # nothing open in the home city at this hour: the customer pays online instead
        method[IN_PERSON[method] & ~pop.open_somewhere[home, local_hour] & ~off_hours] = ONLINE
        in_person = IN_PERSON[method]
        merchant = np.where(
            in_person,
            np.where(
                off_hours,
                pop.pick_city_merchants(rng.random(n), home),
                pop.pick_in_person_merchants(rng.random(n), home, local_hour),
            ),
            pop.pick_online_merchants(rng.random(n)),
        )
        place = pop.place_location[customer, rng.integers(0, PLACES_PER_CUSTOMER, n)]
        location = np.where(in_person, pop.merchant_location[merchant], place)
        from_phone = (method == MOBILE) | (rng.random(n) < pop.online_from_phone[customer])
        device = np.where(
            in_person, 0, np.where(from_phone, pop.phone_device[customer], pop.computer_device[customer])
        )
        return method, merchant, location, device

    def _travel_far(
        self,
        travel_rows: np.ndarray,
        customer: np.ndarray,
        home: np.ndarray,
        method: np.ndarray,
        merchant: np.ndarray,
        location: np.ndarray,
        device: np.ndarray,
    ) -> None:
        """Impossible travel, in place: in person at a merchant of a far city, or online there."""
        rng, pop = self.rng, self.population
        far = pop.pick_far_cities(rng.random(len(travel_rows)), home[travel_rows])
        far_merchant = pop.pick_city_merchants(rng.random(len(travel_rows)), far)
        has = pop.city_has_merchant[far]
        visitor = pop.visitor_location[far, rng.integers(0, VISITOR_POINTS_PER_CITY, len(far))]
        method[travel_rows] = np.where(has, np.where(rng.random(len(far)) < 0.7, POS, NFC), ONLINE)
        merchant[travel_rows] = np.where(has, far_merchant, merchant[travel_rows])
        location[travel_rows] = np.where(has, pop.merchant_location[far_merchant], visitor)
        device[travel_rows] = np.where(has, 0, pop.computer_device[customer[travel_rows]])

    def _amounts(self, customer: np.ndarray, merchant: np.ndarray) -> np.ndarray:
        """The customer's typical spend, scaled by the merchant's category and noise, rounded."""
        pop = self.population
        noise = self.rng.lognormal(0.0, AMOUNT_NOISE_SD, len(customer))
        noise = np.clip(noise, AMOUNT_NOISE_MIN, AMOUNT_NOISE_MAX)
        raw = pop.typical_spend[customer] * _CATEGORY_FACTOR[pop.merchant_category[merchant]] * noise
        return (np.round(raw / AMOUNT_ROUNDING) * AMOUNT_ROUNDING).astype(np.int64)

    def _outcomes(self, customer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Status (declined and pending at their rates), failure reason and risk level."""
        rng, n = self.rng, len(customer)
        u = rng.random(n)
        status = np.where(
            u < self.params.declined_rate,
            DECLINED,
            np.where(u < self.params.declined_rate + PENDING_RATE, PENDING, APPROVED),
        )
        reason = np.where(
            status == DECLINED, rng.choice(len(FAILURE_REASONS), n, p=FAILURE_REASON_WEIGHTS), -1
        )
        jitter = rng.choice(RISK_JITTER[0], n, p=RISK_JITTER[1])
        risk = np.clip(self.population.base_risk[customer] + jitter, 1, 5)
        return status, reason, risk

    def _label_fraud(
        self,
        marks: np.ndarray,
        t_ms: np.ndarray,
        customer: np.ndarray,
        id_bytes: np.ndarray,
        location: np.ndarray,
        amount: np.ndarray,
        status: np.ndarray,
        spike_factor: np.ndarray,
        end_ms: int,
    ) -> np.ndarray:
        """The rule labels of the valid stream (as bits), settling the spikes' final amounts in
        `amount` and `marks` and carrying the rule state to the next chunk."""
        pop = self.population
        n = len(t_ms)
        valid = marks <= fraud.SPIKE
        valid_rows = np.flatnonzero(valid)
        id_high, id_low = uuid_sort_keys(id_bytes)
        locs = pop.locations
        events = fraud.RuleInput(
            customer=customer[valid_rows],
            time=t_ms[valid_rows],
            id_high=id_high[valid_rows],
            id_low=id_low[valid_rows],
            lat=locs.lat[location[valid_rows]],
            lng=locs.lng[location[valid_rows]],
            amount=amount[valid_rows],
            approved=status[valid_rows] == APPROVED,
        )
        state = fraud.RuleState(events, self.carry)
        spike_in_valid = np.flatnonzero(marks[valid_rows] == fraud.SPIKE)
        valid_amount, kept = fraud.settle_spikes(
            state, events.amount, spike_in_valid, spike_factor,
            pop.typical_spend[events.customer],
        )
        dropped = np.setdiff1d(spike_in_valid, kept)
        marks[valid_rows[dropped]] = fraud.REGULAR
        amount[valid_rows] = valid_amount
        bits = np.zeros(n, dtype=np.int64)
        bits[valid_rows] = fraud.label_bits(state, valid_amount)
        fraud.advance(self.carry, state, events, valid_amount, end_ms)
        return bits

    def _corrupt_invalid(
        self,
        marks: np.ndarray,
        t_ms: np.ndarray,
        customer: np.ndarray,
        merchant: np.ndarray,
        method: np.ndarray,
        device: np.ndarray,
        amount: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        """Commission, VAT and total, and the invalid events' corruptions that change columns
        (method and device in place; ERR_SCHEMA is applied to the JSON text, from its variant and
        choice). Returns (value time, commission, vat, total, schema variant, schema choice)."""
        rng, pop, n = self.rng, self.population, len(t_ms)
        err_device = np.flatnonzero(marks == fraud.ERR_DEVICE)
        method[err_device] = MOBILE
        device[err_device] = pop.computer_device[customer[err_device]]
        value_t_ms = t_ms.copy()
        err_time = np.flatnonzero(marks == fraud.ERR_TIME)
        value_t_ms[err_time] += invalid.time_drifts(rng, len(err_time))

        ctype = pop.merchant_commission_type[merchant]
        commission, vat = self._commission(ctype, amount)
        total = commission_rules.total(amount, commission, vat)
        err_amount = np.flatnonzero(marks == fraud.ERR_AMOUNT)
        total[err_amount] += invalid.amount_deltas(rng, amount[err_amount])
        err_schema = np.flatnonzero(marks == fraud.ERR_SCHEMA)
        schema_variant = np.zeros(n, dtype=np.int64)
        schema_choice = np.zeros(n, dtype=np.int64)
        schema_variant[err_schema] = rng.integers(0, len(invalid.SCHEMA_VARIANTS), len(err_schema))
        schema_choice[err_schema] = rng.integers(0, 1 << 30, len(err_schema))
        return value_t_ms, commission, vat, total, schema_variant, schema_choice

    def _commission(self, ctype: np.ndarray, amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Commission and VAT from darooghe.commission, called once per distinct (type, amount)."""
        keys = amount * len(COMMISSION_TYPES) + ctype
        unique, inverse = np.unique(keys, return_inverse=True)
        cache = self._commission_cache
        pairs = []
        for key in unique.tolist():
            hit = cache.get(key)
            if hit is None:
                amt, kind = divmod(key, len(COMMISSION_TYPES))
                hit = (
                    commission_rules.commission(COMMISSION_TYPES[kind], amt),
                    commission_rules.vat(amt),
                )
                if len(cache) < 2_000_000:
                    cache[key] = hit
            pairs.append(hit)
        table = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return table[inverse, 0], table[inverse, 1]

    def _count(self, batch: Batch) -> None:
        c = self.counts
        c["events"] += len(batch)
        for mark, name in fraud.MARK_NAMES.items():
            if mark != fraud.REGULAR:
                c["injected:" + name] += int(np.sum(batch.marks == mark))
        for bit, rule in fraud.RULE_BITS:
            c["label:" + rule] += int(np.sum((batch.bits & bit) > 0))
        for mark, name in fraud.INVALID_LABELS.items():
            c["label:" + name] += int(np.sum(batch.marks == mark))
        c["declined"] += int(np.sum(batch.status == DECLINED))


class Renderer:
    """Event JSON text, and record-file lines, from a Batch: one %-format per event.

    Everything that is not a number is a precomputed fragment picked by index, and neighbouring
    fields are joined into one fragment where their combinations are few (merchant + category +
    method; status + commission type; customer type + risk + failure reason; commission + VAT +
    total per distinct amount), because the cost of the %-format grows with its arguments. The
    record-file line embeds the value with its quotes escaped, which is what json.dumps produces
    for these ASCII values, so lines are byte-identical to records.Record.to_json().
    """

    VALUE = (
        '{"transaction_id":"%s","timestamp":"%s","customer_id":"%s",%s,"amount":%d,'
        '"location":%s,"device_info":%s,%s%s,%s}'
    )

    def __init__(self, population: Population, label_header: str) -> None:
        pop = population
        self.population = pop
        self.label_header = label_header
        n_methods, n_types = len(PAYMENT_METHODS), len(COMMISSION_TYPES)
        merchant_method = [
            f'"merchant_id":"{mid}","merchant_category":"{MERCHANT_CATEGORIES[cat]}",'
            f'"payment_method":"{method}"'
            for mid, cat in zip(pop.merchant_ids, pop.merchant_category)
            for method in PAYMENT_METHODS
        ]
        status_type = [
            f'"status":"{status}","commission_type":"{kind}","commission_amount":'
            for status in STATUSES
            for kind in COMMISSION_TYPES
        ]
        reasons = ["null"] + [f'"{r}"' for r in FAILURE_REASONS]  # index: reason + 1
        type_risk_reason = [
            f'"customer_type":"{ctype}","risk_level":{risk},"failure_reason":{reason}'
            for ctype in CUSTOMER_TYPES
            for risk in range(1, 6)
            for reason in reasons
        ]
        tables = {
            "merchant_method": merchant_method,
            "location": pop.locations.json,
            "device": pop.device_json,
            "status_type": status_type,
            "type_risk_reason": type_risk_reason,
        }
        self.tables = {
            escaped: {name: _table(texts, escaped) for name, texts in tables.items()}
            for escaped in (False, True)
        }
        self._method_count, self._type_count = n_methods, n_types
        self._reason_count = len(reasons)
        self._customer_type = pop.customer_type
        self._money_cache: dict[int, tuple[str, str]] = {}
        self.template = {False: self.VALUE, True: self.VALUE.replace('"', '\\"')}
        self.line = '{"key":"%s","value":"' + self.template[True] + '","timestamp":%d,"headers":%s}'
        labels = fraud.LABEL_TEXT[1:] + list(fraud.INVALID_LABELS.values())
        self.headers = np.array(["{}"] + [f'{{"{label_header}":"{x}"}}' for x in labels], dtype=object)

    def _columns(self, b: Batch, customer_ids: list[str], escaped: bool) -> list[list]:
        t = self.tables[escaped]
        ctype = self.population.merchant_commission_type[b.merchant]
        return [
            b.ids,
            iso_millis(b.value_t_ms),
            customer_ids,
            t["merchant_method"][b.merchant * self._method_count + b.method].tolist(),
            b.amount.tolist(),
            t["location"][b.location].tolist(),
            t["device"][b.device].tolist(),
            t["status_type"][b.status * self._type_count + ctype].tolist(),
            self._money(b, ctype, escaped),
            t["type_risk_reason"][
                (self._customer_type[b.customer] * 5 + b.risk - 1) * self._reason_count + b.reason + 1
            ].tolist(),
        ]

    def _money(self, b: Batch, ctype: np.ndarray, escaped: bool) -> list[str]:
        """'commission,"vat_amount":vat,"total_amount":total' per event, one text per distinct
        (amount, commission type); rows whose total was made inconsistent get their own."""
        keys = b.amount * len(COMMISSION_TYPES) + ctype
        unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        cache, texts = self._money_cache, []
        for key, i in zip(unique.tolist(), first.tolist()):
            hit = cache.get(key)
            if hit is None:
                hit = _money_texts(int(b.commission[i]), int(b.vat[i]), int(commission_rules.total(
                    int(b.amount[i]), int(b.commission[i]), int(b.vat[i]))))
                if len(cache) < 1_000_000:
                    cache[key] = hit
            texts.append(hit[escaped])
        out = np.array(texts, dtype=object)[inverse]
        expected = commission_rules.total(b.amount, b.commission, b.vat)
        for i in np.flatnonzero(b.total != expected).tolist():
            out[i] = _money_texts(int(b.commission[i]), int(b.vat[i]), int(b.total[i]))[escaped]
        return out.tolist()

    def values(self, b: Batch) -> list[str]:
        """The JSON value of each event (Kafka payloads)."""
        customer_ids = self.population.customer_ids[b.customer].tolist()
        tmpl = self.VALUE
        out = [tmpl % row for row in zip(*self._columns(b, customer_ids, escaped=False))]
        for i, variant, choice in self._schema_rows(b):
            out[i] = invalid.break_schema(out[i], variant, choice)
        return out

    def record_lines(self, b: Batch, record_ts: np.ndarray) -> list[str]:
        """Record-file lines (darooghe.records format, no newline) of each event."""
        from darooghe.records import Record

        keys = self.population.customer_ids[b.customer].tolist()
        columns = self._columns(b, keys, escaped=True)
        line = self.line
        out = [line % row for row in zip(keys, *columns, record_ts.tolist(), self.header_json(b))]
        escaped_value = self.template[True]
        for i, variant, choice in self._schema_rows(b):
            # the plain value back from the escaped one (values hold no backslashes)
            plain = (escaped_value % tuple(col[i] for col in columns)).replace('\\"', '"')
            value = invalid.break_schema(plain, variant, choice)
            label = fraud.INVALID_LABELS[fraud.ERR_SCHEMA]
            out[i] = Record(keys[i], value, int(record_ts[i]), {self.label_header: label}).to_json()
        return out

    def header_json(self, b: Batch) -> list[str]:
        """The record-file "headers" object of each event."""
        index = b.bits.copy()  # rule bits 0..7, then 8.. for the invalid marks
        for k, mark in enumerate(fraud.INVALID_MARKS):
            index[b.marks == mark] = 8 + k
        return self.headers[index].tolist()

    @staticmethod
    def _schema_rows(b: Batch):
        rows = np.flatnonzero(b.marks == fraud.ERR_SCHEMA)
        return zip(rows.tolist(), b.schema_variant[rows].tolist(), b.schema_choice[rows].tolist())


def _money_texts(commission: int, vat: int, total: int) -> tuple[str, str]:
    plain = f'{commission},"vat_amount":{vat},"total_amount":{total}'
    return plain, plain.replace('"', '\\"')


def _table(texts, escaped: bool) -> np.ndarray:
    return np.array([t.replace('"', '\\"') if escaped else t for t in texts], dtype=object)
