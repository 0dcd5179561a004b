"""What the bench reports share: reading the JSON, ratios, table cells, targets."""
from __future__ import annotations

import json
import os


def ratio(a, b):
    """a / b, or None when either is missing or b is zero."""
    return None if a is None or b is None or b == 0 else a / b


def fmt_seconds(v):
    """A time in seconds for a table cell: us, ms or s; "-" when missing."""
    if v is None:
        return "-"
    if v < 1e-3:
        return f"{v * 1e6:.1f} us"
    if v < 1:
        return f"{v * 1e3:.2f} ms"
    return f"{v:.2f} s"


def fmt_ratio(v):
    """A ratio for a table cell ("1.23x"); "-" when missing."""
    return "-" if v is None else f"{v:.2f}x"


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


#: file the reports append missed targets to; ``make bench`` prints it as its last line
MISSED_FILE = os.environ.get("RSFT_BENCH_MISSED", "")


def check_targets(targets, width):
    """Print each target and whether it is met; return the exit status (1 if any measured
    target was missed). ``targets``: (label, (min ratio, median ratio) or (None, None),
    predicate on the min ratio, name of the ratio). Missed targets are also appended to
    MISSED_FILE, one line each with the measured value."""
    n_met, missed = 0, []
    for label, (v, vmed), pred, what in targets:
        if v is None:
            status, val = "NOT EVALUATED (benchmark missing)", ""
        else:
            met = pred(v)
            n_met += met
            status = "MET" if met else "NOT MET"
            med = f" [{vmed:.2f}x]" if vmed is not None else ""
            val = f"{what} = {v:.2f}x{med}"
            if not met:
                missed.append(f"{label} ({what} = {v:.2f}x)")
        print(f"  [{status:^7}] {label:<{width}} {val}")
    print(f"  {n_met}/{len(targets)} targets met")
    if missed and MISSED_FILE:
        with open(MISSED_FILE, "a") as f:
            f.writelines(m + "\n" for m in missed)
    return 1 if missed else 0


def print_figures(figures, width):
    """Ratios reported without a target (they move with a peer's or the machine's time)."""
    for label, (v, vmed), what in figures:
        val = "-" if v is None else f"{what} = {v:.2f}x" + (
            f" [{vmed:.2f}x]" if vmed is not None else "")
        print(f"  [ figure] {label:<{width}} {val}")


def finish(status, failed, width):
    """End a report: name the benchmarks whose result checks failed, draw the closing rule and
    return the exit status (1 if a measured target was missed or a result was wrong)."""
    if failed:
        print(f"  WARNING: result checks failed for {failed}")
    print("=" * width)
    return 1 if failed else status
