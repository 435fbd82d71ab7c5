"""Read the status table: an entity's current status and history, the messages of an operation, all states.

    twilio-sink status [--local | --stack NAME | --table NAME] show message MM123…
    twilio-sink status ... operation comms_operation_01…     # its status and its messages
    twilio-sink status ... list [--entity message] [--account AC…]   # every current status (a Scan)
    twilio-sink status ... accounts                          # per account: its entities, by status

Where the table is: `--local` (the running `twilio-sink serve`, the default when it runs), `--stack` (a deployed
stack's StatusTableName output), or `--table`. AWS credentials and region come from the usual places.
"""

import argparse
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sink_ops import locate
from twilio_sink.registry import FAMILIES, UNMODELLED
from twilio_sink.state import EntityState, HistoryEntry
from twilio_sink.store import StatusStore

# The families are the one source of entity names (the catch-all's `event` included).
ENTITIES = tuple(sorted({family.entity for family in (*FAMILIES, UNMODELLED)}))
NO_ACCOUNT = "(none)"


# ---------------------------------------------------------------------------------------- output

Row = tuple[str, str, str, str | None, str, str]  # entity, id, status, account, event time, event type


def states_table(states: list[EntityState]) -> str:
    return rows_table([(s.winner.entity, s.winner.id, s.status, s.account_sid, s.winner.event_time, s.winner.event_type)
                       for s in states])


def rows_table(rows: list[Row]) -> str:
    lines = [f"{'entity':<21} {'id':<36} {'status':<24} {'account':<34} {'event time':<28} event type"]
    lines += [f"{entity:<21} {id_:<36} {status:<24} {account or NO_ACCOUNT:<34} {event_time:<28} {event_type}"
              for entity, id_, status, account, event_time, event_type in sorted(rows)]
    return "\n".join(lines)


def accounts_table(states: list[EntityState]) -> str:
    """Per account (as the events named it): how many entities, by entity and status."""
    counts: dict[str, dict[tuple[str, str], int]] = {}
    for state in states:
        per = counts.setdefault(state.account_sid or NO_ACCOUNT, {})
        per[(state.winner.entity, state.status)] = per.get((state.winner.entity, state.status), 0) + 1
    lines = [f"{'account':<34} {'entities':>8}  by entity and status"]
    for account in sorted(counts):
        per = counts[account]
        detail = ", ".join(f"{n} {entity} {status}" for (entity, status), n in sorted(per.items()))
        lines.append(f"{account:<34} {sum(per.values()):>8}  {detail}")
    return "\n".join(lines)


def history_table(history: list[HistoryEntry]) -> str:
    lines = [f"{'event time':<28} {'status':<24} {'source':<8} {'event id':<36} event type"]
    lines += [f"{h.event.event_time:<28} {h.event.status:<24} {h.source:<8} {h.event.event_id:<36} {h.event.event_type}"
              for h in history]
    return "\n".join(lines)


def show(store: StatusStore, entity: str, entity_id: str) -> tuple[int, str]:
    pk = f"{entity}#{entity_id}"
    state, history = store.entity(pk)
    if state is None and not history:
        return 1, f"no {entity} {entity_id} in the table (pk {pk!r})"
    out = []
    if state:
        winner = state.winner
        out += [f"{entity} {entity_id}: {state.status}",
                f"  since {winner.event_time} ({winner.event_type}, event {winner.event_id})",
                f"  updated {state.updated_at}, version {state.version}"]
        if state.account_sid:
            out.append(f"  account {state.account_sid}")
        if state.indexed.get("operation_id"):
            out.append(f"  operation {state.indexed['operation_id']}")
        # A claim is proven published once its event's history item exists (written after publishing).
        waiting = set(state.claims) - {entry.event.event_id for entry in history}
        if waiting:
            out.append(f"  {len(waiting)} change(s) not yet confirmed published")
        out.append(f"  data {winner.data}")
    out += ["", f"History ({len(history)} events accepted, in event time order):", history_table(history)]
    return 0, "\n".join(out)


def operation(store: StatusStore, operation_id: str) -> tuple[int, str]:
    state, _ = store.entity(f"operation#{operation_id}")
    messages = store.of_operation(operation_id)  # the index projects no account
    if state is None and not messages:
        return 1, f"no operation {operation_id} and no messages of it in the table"
    head = f"operation {operation_id}: {state.status if state else 'no operation event yet'}"
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.status] = counts.get(message.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    rows: list[Row] = [("message", m.id, m.status, None, m.event_time, m.event_type) for m in messages]
    return 0, "\n".join([head, f"Messages ({len(messages)}: {summary}):", rows_table(rows)])


# ---------------------------------------------------------------------------------------- where the table is

def open_table(args) -> StatusStore:
    if args.table:
        return StatusStore(args.table, boto3.client("dynamodb", region_name=args.region))
    if args.stack:
        outputs = locate.outputs(args.stack, args.region)
        if "StatusTableName" not in outputs:
            raise LookupError(f"stack {args.stack} has no StatusTableName output")
        return StatusStore(outputs["StatusTableName"], boto3.client("dynamodb", region_name=args.region))
    local = locate.local(args.state_file)
    client = boto3.client("dynamodb", region_name=local["region"], endpoint_url=local["endpoint_url"],
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return StatusStore(local["table_name"], client)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twilio-sink status", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the running `twilio-sink serve` (default when no table is given)")
    where.add_argument("--stack", help="a deployed stack's name (reads its StatusTableName output)")
    where.add_argument("--table", help="the table name")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--state-file", type=Path, default=locate.LOCAL_STACK_FILE, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True)
    show_parser = commands.add_parser("show", help="an entity's current status and its history")
    show_parser.add_argument("entity", help=f"one of {', '.join(ENTITIES)}; or ENTITY#ID as one argument")
    show_parser.add_argument("id", nargs="?")
    op_parser = commands.add_parser("operation", help="an operation's status and the messages it sent")
    op_parser.add_argument("operation_id")
    list_parser = commands.add_parser("list", help="every entity's current status (Scan)")
    list_parser.add_argument("--entity", choices=ENTITIES)
    list_parser.add_argument("--account", metavar="AC…", help="only the entities of this account (or subaccount)")
    commands.add_parser("accounts", help="per account: how many entities, by entity and status (Scan)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        table = open_table(args)
        if args.command == "show":
            entity, _, joined_id = args.entity.partition("#")
            entity_id = args.id or joined_id
            if entity not in ENTITIES or not entity_id:
                print(f"error: expected ENTITY ID with ENTITY one of {', '.join(ENTITIES)}", file=sys.stderr)
                return 2
            code, text = show(table, entity, entity_id)
        elif args.command == "operation":
            code, text = operation(table, args.operation_id)
        elif args.command == "accounts":
            states = table.states()
            code, text = 0, f"Status table ({len(states)} entities) by account:\n{accounts_table(states)}"
        else:
            states = table.states(args.entity, args.account)
            code, text = 0, f"Status table ({len(states)} entities):\n{states_table(states)}"
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: could not read the status table: {error}", file=sys.stderr)
        return 1
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
