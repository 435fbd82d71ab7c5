"""Every module of the core and the tools imports: a name moved or renamed fails here, not the first time a
rarely run command (the bench's baseline, say) starts."""

import importlib

import pytest

from sink_dev.paths import ROOT

PACKAGES = [ROOT / "layers" / "core" / "twilio_sink", *sorted(p for p in (ROOT / "tools").iterdir()
                                                          if (p / "__init__.py").exists())]
# Runs under the SAM CLI's interpreter, which has samtranslator and cfn-lint (tests/template/test_template.py).
ELSEWHERE = {"sink_dev.lint_template"}
MODULES = sorted(name for package in PACKAGES for path in package.rglob("*.py")
                 if (name := ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"))
                 not in ELSEWHERE)


def test_every_package_is_listed():
    assert {"twilio_sink.pipeline", "twilio_sink.reconcile.run", "sink_bench.naive", "sink_ops.replay"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_module_imports(name):
    importlib.import_module(name)
