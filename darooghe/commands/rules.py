"""`darooghe rules show | set`: the fraud rule sets in `darooghe.fraud_rules`.

`set` never edits a version: it publishes the next one, applied from `--effective-from` (event
time; default now) on, which the fraud job picks up at its next micro-batch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from confluent_kafka import KafkaException

from darooghe.config import ConfigError, load_settings
from darooghe.fraud.rule_edits import differences, editable_fields, next_version, parse_time_ms
from darooghe.fraud.ruleset import RuleSetError
from darooghe.fraud.txn import iso_ms
from darooghe.topics import FRAUD_RULES


def register(sub) -> None:
    p = sub.add_parser("rules", help="show or change the fraud rules' thresholds (versioned)")
    rsub = p.add_subparsers(dest="rules_action", required=True, metavar="ACTION")

    s = rsub.add_parser("show", help="the rule-set history, or the version active at a time")
    s.add_argument(
        "--active",
        nargs="?",
        const="now",
        metavar="TIME",
        help="only the version active at TIME (ISO or epoch ms; default now), in full",
    )
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--topic", default=FRAUD_RULES.name, help=argparse.SUPPRESS)
    s.set_defaults(func=show)

    st = rsub.add_parser(
        "set",
        help="publish the next version with these changes",
        description="Changes are field=value; fields: "
        + ", ".join(editable_fields())
        + ". enabled.RULE=true|false and severity_points.LEVEL=N change one member.",
    )
    st.add_argument("changes", nargs="+", metavar="FIELD=VALUE")
    st.add_argument(
        "--effective-from",
        default="now",
        metavar="TIME",
        help="event time the version applies from: ISO time or epoch ms (default now)",
    )
    st.add_argument("--comment", help="who changed it and why (shown in the history)")
    st.add_argument("--topic", default=FRAUD_RULES.name, help=argparse.SUPPRESS)
    st.set_defaults(func=set_rules)


def _time_ms(text: str) -> int:
    return time.time_ns() // 1_000_000 if text == "now" else parse_time_ms(text)


def show(args) -> int:
    from darooghe.fraud.rule_store import load_rule_history

    try:
        history = load_rule_history(load_settings(), args.topic)
        if args.active is not None:
            active = history.at(_time_ms(args.active))
            if args.json:
                print(json.dumps(active.to_dict(), indent=2, sort_keys=True))
            else:
                print(f"version {active.version}, from {iso_ms(active.effective_from_ms)}")
                for line in differences(None, active):
                    print(f"  {line}")
            return 0
    except (RuleSetError, ConfigError, KafkaException) as exc:
        print(f"darooghe rules show: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in history.versions], indent=2, sort_keys=True))
        return 0
    now = history.at(time.time_ns() // 1_000_000).version
    previous = None
    for r in history.versions:
        mark = "*" if r.version == now else " "
        print(f"{mark} v{r.version}  from {iso_ms(r.effective_from_ms)}  {r.comment}")
        for line in differences(previous, r):
            print(f"      {line}")
        previous = r
    print("(* active now)")
    return 0


def set_rules(args) -> int:
    from darooghe.fraud.rule_store import load_rule_history, publish_rule_set

    try:
        settings = load_settings()
        latest = load_rule_history(settings, args.topic).latest
        ruleset = next_version(latest, args.changes, _time_ms(args.effective_from), args.comment)
        publish_rule_set(settings, ruleset, args.topic)
    except (RuleSetError, ConfigError, KafkaException) as exc:
        print(f"darooghe rules set: {exc}", file=sys.stderr)
        return 2
    print(f"published rule set v{ruleset.version}, from {iso_ms(ruleset.effective_from_ms)}:")
    for line in differences(latest, ruleset):
        print(f"  {line}")
    return 0
