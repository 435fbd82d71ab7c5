"""Where the checkout's own files are: the tools run from a clone (editable install), never from Lambda."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
