"""Rewrite AsyncAPI JSON files with sorted keys: FastStream's channel order varies between runs,
so the checked-in documents under docs/asyncapi/ would churn without it."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def normalize(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    for name in argv:
        normalize(Path(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
