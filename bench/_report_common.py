"""What bench/report.py and bench/report_optim.py share: reading the JSON, and ratios."""
from __future__ import annotations

import json


def ratio(a, b):
    """a / b, or None when either is missing or b is zero."""
    return None if a is None or b is None or b == 0 else a / b


def load(argv, doc, prog):
    """The benchmark JSON named by argv[1], or None after printing why (the caller exits 2)."""
    if len(argv) != 2:
        print(doc.strip())
        return None
    try:
        with open(argv[1]) as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        print(f"{prog}: cannot read benchmark JSON {argv[1]!r}: {exc}")
        return None
