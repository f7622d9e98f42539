"""`sentryfuse check` on stores RECORDED from real runs on this machine (not generated):
an A/A pair and a pair whose candidate had a planted 10% slowdown of its pruned variants.
See tests/data/stores/recorded_gate/PROVENANCE.md for how they were made."""

from __future__ import annotations

from pathlib import Path

from harness.cli import main
from reports.store import load_store
from reports.write import write_report

DATA = Path(__file__).parent / "data" / "stores" / "recorded_gate"
PRUNED = ("· sentrygate · s=0.50 ·", "· magnitude · s=0.50 ·")


def _check(capsys, name: str, *extra: str) -> tuple[int, str]:
    code = main(["check", "--baseline", str(DATA / f"{name}_A.sqlite"),
                 "--candidate", str(DATA / f"{name}_B.sqlite"), *extra])  # fmt: skip
    return code, capsys.readouterr().out


def _rows(out: str, title: str) -> list[str]:
    body = out.split(f"### {title}")[1].split("###")[0]
    return [r for r in body.splitlines() if r.startswith("| hapt")]


def test_recorded_stores_are_schema_2_with_trials() -> None:
    for name in ("aa", "planted"):
        for side in "AB":
            store = load_store(DATA / f"{name}_{side}.sqlite")
            assert store.user_version == 2 and set(store.cells["trials"]) == {7}
            assert len(store.trials) == 7 * len(store.cells)
            assert (store.trials["n"] >= 100).all()


def test_recorded_aa_pair_is_never_a_regression(capsys) -> None:
    code, out = _check(capsys, "aa")
    assert code in (0, 3) and _rows(out, "Regressions") == []
    assert "drift of reference hapt · early · sentryattend · dense" in out
    for row in _rows(out, "Inconclusive"):
        assert "MDE +" in row or "reference cell" in row


def test_recorded_planted_slowdown_is_a_regression_of_the_pruned_cells(capsys) -> None:
    code, out = _check(capsys, "planted")
    assert code == 1
    rows = _rows(out, "Regressions")
    assert rows and all(any(p in r for p in PRUNED) for r in rows)  # never the reference
    assert any("| latency_p50 |" in r for r in rows)
    code, _ = _check(capsys, "planted", "--reference", "none")
    assert code != 0


def test_report_of_a_recorded_store_gives_trial_intervals(tmp_path: Path) -> None:
    out = write_report(DATA / "planted_B.sqlite", tmp_path / "report")
    verdict = (out / "summary.md").read_text().split("## Verdict")[1].split("\n## ")[0]
    assert "speedup vs dense (p50)" in verdict and "trials, exact interval" in verdict
    assert "1 seed, binomial interval" in verdict
