"""`twilio-sink`: every command a user of this project runs, one subcommand each.

Each subcommand is a module's own `main(argv)`, imported only when it is called: the operations
commands (status, connect, redrive, replay) need boto3 alone, never the local stack or moto.
Exit codes: 0 done, 1 the work failed (AWS, Twilio, a record), 2 the command line is wrong.
"""

import argparse
import importlib
import sys

# name -> (module whose main(argv) runs it, one line of help); grouped as the help list shows them.
COMMANDS = {
    # Against a deployed stack (or the local one).
    "status": ("sink_ops.status", "an entity's status and history, an operation's messages, every status"),
    "connect": ("sink_ops.connect", "connect Twilio: create a sink, hand-shake it, subscribe it"),
    "redrive": ("sink_ops.redrive", "reprocess stream batches that exhausted their retries"),
    "replay": ("sink_ops.replay", "send dead letters back through the pipeline"),
    "report": ("sink_ops.report", "delivery health for a window from CloudWatch: outcomes, error codes, latency"),
    "backfill": ("sink_ops.backfill", "bring an outage window's messages and calls to what Twilio's REST API says"),
    "external-id": ("sink_ops.external_id", "generate a TwilioExternalId (random, passes the template's check)"),
    # On this machine, no AWS account.
    "serve": ("sink_local.serve", "run the template's stack locally (moto) until Ctrl-C"),
    "run": ("sink_local.run", "start the local stack, replay events/ through both doors, print, stop"),
    "send": ("sink_local.send", "send CloudEvents to the running local stack through either door"),
    "invoke": ("sink_local.invoke", "run a function on an event under sam local invoke (Docker), on either stack"),
    # Building and measuring.
    "events": ("sink_dev.events", "regenerate the sample Lambda events under events/"),
    "families": ("sink_dev.families", "regenerate the table of event families in docs/families.md"),
    "dashboard": ("sink_dev.dashboard", "copy dashboard.json into template.yaml's DashboardBody (--check: compare)"),
    "bench": ("sink_bench.__main__", "throughput, cost, latency, memory and cold-start figures"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twilio-sink", description=__doc__.split("\n\n")[0],
        epilog="`twilio-sink COMMAND --help` tells a command's options.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)  # prints the help list, or the usage error (exit 2)
        return 2
    # Everything after the name, --help included, is the command's own: its parser reads it.
    module = importlib.import_module(COMMANDS[argv[0]][0])
    try:
        return module.main(argv[1:]) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
