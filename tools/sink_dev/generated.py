"""Blocks of the docs that are generated, never typed: `<!-- generated:NAME -->` … `<!-- /generated:NAME -->`.

`make bench` and `make mutate` write their results to docs/generated/*.json and rewrite their block from
them; tests/docs/test_generated.py renders each block again from its file and fails on any difference.
"""

import re
from pathlib import Path


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} -->\n)(.*?)(<!-- /generated:{name} -->)", re.DOTALL)


def read_block(path: Path, name: str) -> str:
    match = _pattern(name).search(path.read_text())
    if match is None:
        raise LookupError(f"{path} has no generated:{name} block")
    return match[2].strip("\n")


def update_block(path: Path, name: str, text: str) -> None:
    read_block(path, name)  # the markers must be there: never append a block somewhere by guess
    content = _pattern(name).sub(lambda m: m[1] + text.strip("\n") + "\n" + m[3], path.read_text())
    path.write_text(content)
