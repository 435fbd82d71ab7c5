"""docs/families.md stays true: its table is the families' own, and its walk-through adds a working family."""

import json
import re
import types

from sink_dev import families as doc
from twilio_sink import registry
from twilio_sink.envelope import CloudEvent

TEXT = doc.DOC.read_text(encoding="utf-8")
WALK_THROUGH = TEXT[TEXT.index("## Adding a family"):]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", WALK_THROUGH, flags=re.S)


def test_the_table_is_what_the_families_declare():
    assert doc.rendered(TEXT) == TEXT, "run `twilio-sink families`"
    assert doc.main(["--check"]) == 0
    for family in registry.FAMILIES:
        assert f"| `{family.name}` | `{family.entity}` |" in TEXT


def test_the_walk_through_module_routes_its_sample_once_registered(monkeypatch):
    # Given the module of the walk-through, as written there
    code = blocks("python")[0]
    module = types.ModuleType("twilio_sink.families.notifications")
    exec(compile(code, "docs/families.md", "exec"), module.__dict__)
    family = module.Notifications()
    # When it is added to the registry (the one line of step 2)
    monkeypatch.setattr(registry, "FAMILIES", (*registry.FAMILIES, family))
    monkeypatch.setattr(registry, "BY_TYPE", registry.BY_TYPE | dict.fromkeys(family.types, family))
    # Then the walk-through's sample is routed to its entity, status and account
    sample = blocks("json")[0]
    change = registry.route(CloudEvent.model_validate(json.loads(sample)))
    assert (change.entity, change.entity_id, change.status) == ("notification", "NT1", "delivered")
    assert change.indexed == {"account_sid": "AC7052102cd33665b8046063f51b60605c"}
    # and the table would list it
    assert "| `notifications` | `notification` |" in doc.table((family,))
