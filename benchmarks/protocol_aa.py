"""A/A of the paper-protocol comparisons: the same profile run twice.

    sentryfuse run profiles/quickstart.toml --out /tmp/aa1
    sentryfuse run profiles/quickstart.toml --out /tmp/aa2
    python benchmarks/protocol_aa.py /tmp/aa1 /tmp/aa2

``sentryfuse report --ordinary`` refuses two prunability-trained runs (they are not the
paper's protocol), so this calls ``reports.protocol.full_model_table`` and
``reports.claims.claims_table`` directly: with seeded, deterministic training the full
model's differences must be 0 and the two runs' accuracy claims equal; the intervals
printed are the spread the comparison reports when nothing changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.claims import claims_table  # noqa: E402
from reports.protocol import full_model_table  # noqa: E402
from reports.render import markdown_table  # noqa: E402
from reports.store import load_store  # noqa: E402
from sentryfuse.errors import StoreError  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python benchmarks/protocol_aa.py RUN_A RUN_B", file=sys.stderr)
        return 2
    try:
        a, b = (load_store(p) for p in argv)
    except StoreError as exc:
        print(f"protocol_aa: error: {exc}", file=sys.stderr)
        return 2
    print("Full model, A minus B (unpruned, paired by backbone, attention and seed):\n")
    print(markdown_table(full_model_table(a.cells, b.cells)))
    ca, cb = claims_table(a.cells), claims_table(b.cells)
    rows = ca[ca["protocol"].str.startswith("same checkpoint")]
    print("\n| claim | A | B | equal |\n|---|---|---|---|")
    for i in rows.index:
        x, y = ca.at[i, "measured"], cb.at[i, "measured"]
        print(f"| {ca.at[i, 'claim']} | {x} | {y} | {'yes' if x == y else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
