"""Reconciliation: what Twilio's REST API says about entities whose events stopped coming.

Twilio can lose events for good (error 91303; retries end after 4 hours; `queued` is often never
sent). A scheduled run (run.py) asks Twilio about the entities gone quiet and corrects, through the
same pipeline as the sinks, every status that differs.

The package, by concern:
- client.py: Twilio's REST API (API keys per account, clients, backoff), knowing no family;
- resources.py: per reconciled family, one `Resource` class naming its family: what is asked of
  Twilio, how the answer reads in the family's words, and how a correction says it (`RESOURCES`);
- corrections.py: the synthetic CloudEvent that corrects, and its way through the pipeline;
- run.py: the scheduled run (which entities are due, the deadline, the metrics).

Why the family's resource is declared here and not in the family module: the stream consumer and the
webhook import every family on a cold start, and nothing of this package or of the `twilio` package
may come with them (their import time is benchmarked). What a family keeps is what those functions
need as they write a state: `final` and `quiet_after` (when an entity enters the Unsettled index and
when it is due). Every family with a `quiet_after` has exactly one resource (tests/reconcile).
Backfill (listing Twilio's messages and calls of a window) is the `twilio-sink backfill` command's
own, in tools/sink_ops/backfill.py: no function lists.
"""
