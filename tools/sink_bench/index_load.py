"""Writes per second on the table's hottest keys: the indexes' partition keys and one entity's item collection.

    cd tools && ../.venv/bin/python -m sink_bench.index_load [--entities N] [--rate R] [--target EVENTS_PER_S]

Runs `make bench`'s cost workload (tools/sink_bench/workload.py `lifecycles`, every message one bulk
send: the seed's messages share one `operation_id`) through the stream consumer against the bench's
AWS stand-in, one batch per 1 s batching window, and counts each write by DynamoDB's rules for a
global secondary index: an item write touches an index when the item is in it before or after; a
write that changes the index's key is two index writes (delete and put). The stand-in does not keep
indexes itself, nor does `make bench`'s cost table count their write units. Index items are sized
from the projected attributes (template.yaml). An index key's write units per event, times
`--target` events/s, is its load at that rate with the same mix; an entity's item collection is
counted per one-second batch instead (its writes follow its own events, not the total rate).
"""

import argparse
import math
from collections import Counter

from sink_bench import workload
from sink_bench.fake_aws import item_kind, item_size
from sink_bench.worker import attach_core, fake_stack
from sink_dev.template import load_template
from sink_local.stack import LambdaContext, load_function

PARTITION_WCU = 1000  # DynamoDB: writes one partition accepts per second


def indexes() -> dict[str, tuple[list[str], list[str]]]:
    """Index name -> (key attributes, projected attributes), from template.yaml."""
    table = load_template()["Resources"]["StatusTable"]["Properties"]
    found = {}
    for index in table["GlobalSecondaryIndexes"]:
        keys = [key["AttributeName"] for key in index["KeySchema"]]
        found[index["IndexName"]] = (keys, keys + ["pk", "sk"] + index["Projection"].get("NonKeyAttributes", []))
    return found


def index_writes(keys: list[str], projected: list[str], before: dict | None, after: dict | None) -> list[tuple[str, int]]:
    """(index partition key, write units) of one item write, by DynamoDB's rules."""
    def entry(item):
        if item and all(key in item for key in keys):
            return next(iter(item[keys[0]].values())), {name: item[name] for name in projected if name in item}
        return None

    old, new = entry(before), entry(after)
    writes = []
    if old and (not new or [before[k] for k in keys] != [after[k] for k in keys]):
        writes.append((old[0], math.ceil(max(1, item_size(old[1])) / 1024)))  # removed, or the delete of a key change
    if new:
        writes.append((new[0], math.ceil(max(1, item_size(new[1])) / 1024)))
    return writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=200, help="new entities a second (the cost workload's)")
    parser.add_argument("--target", type=float, default=10_000, help="events/s to scale the index keys to")
    args = parser.parse_args(argv)

    fake = fake_stack({"dynamodb": 0, "sns": 0, "sqs": 0, "secrets-manager": 0})
    handler = load_function("stream_consumer")
    attach_core(fake)
    events = workload.lifecycles(args.entities, args.rate)
    for event in events:
        if "message_id" in event["data"]:
            event["data"]["operation_id"] = "bulk-send"
    batches = workload.stream_batches(events)

    found = indexes()
    per_batch: list[dict[str, Counter]] = []
    write = fake.dynamodb.capacity.write

    def counting(api, before, after, factor=1):
        item = after or before or {}
        counts = per_batch[-1]
        counts["entity"][item["pk"]["S"]] += 1
        if item_kind(item) == "state":
            for name, (keys, projected) in found.items():
                for key, units in index_writes(keys, projected, before, after):
                    counts[name][key] += units
        return write(api, before, after, factor)

    fake.dynamodb.capacity.write = counting
    from sink_dev.samples import kinesis_event

    context = LambdaContext()
    for number, batch in enumerate(batches):
        per_batch.append({"entity": Counter()} | {name: Counter() for name in found})
        answer = handler.lambda_handler(kinesis_event(batch, 1 + 10_000 * number), context)
        assert not answer["batchItemFailures"], answer
    print(f"workload: {len(events):,} events of {args.entities:,} entities in {len(batches):,} one-second batches; "
          f"index keys at {args.target:,.0f} events/s of the same mix (each key's share of the writes kept)")
    for name in ["entity", *found]:
        totals: Counter = Counter()
        for counts in per_batch:
            totals.update(counts[name])
        if name == "entity":
            hottest = max(max(counts[name].values(), default=0) for counts in per_batch)
            print(f"table, one entity's item collection: at most {hottest} item writes in a one-second batch; "
                  f"{sum(totals.values()) / len(events):.2f} item writes per event")
            continue
        key, units = totals.most_common(1)[0]
        at_target = units / len(events) * args.target
        print(f"{name}: {sum(totals.values()) / len(events):.2f} WCU per event over {len(totals)} keys; hottest key "
              f"{key!r} {units / len(events):.2f} WCU per event = {at_target:,.0f} WCU/s at {args.target:,.0f} events/s "
              f"({at_target / PARTITION_WCU:.1f}x a partition's {PARTITION_WCU:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
