"""``benchmarks/paper_grid_summary.py`` on two real stores: the paper's protocol and the
full model's cost, paired by backbone and seed."""

from __future__ import annotations

from benchmarks.paper_grid_summary import main
from tests.grid_stores import ORDINARY, PRUNABLE, grid_store


def test_full_model_cost_and_paper_protocol_pair_the_two_stores(tmp_path, capsys) -> None:
    prunable = grid_store(tmp_path / "prunable.sqlite", PRUNABLE, subnet=True)
    ordinary = grid_store(tmp_path / "ordinary.sqlite", ORDINARY, subnet=False)
    main(str(prunable), str(ordinary))
    out = capsys.readouterr().out
    assert "| hapt | all | 91 | 91 | 0 | 0 | 0 | 3 seeds, paired t interval | yes |" in out
    assert "| hapt | drop:gyro | 80 | 81 | -1 | -1 | -1 | 3 seeds, paired t interval | no |" in out
    assert "1 of 2 dataset × condition means within 0.5 points." in out
    # paper protocol: SentryGate (prunable) 86 / 72 vs magnitude on the ordinary 75 / 50
    assert "| all sensors | 86.0 | magnitude | +11.0 [+8.5, +13.5] (3 seeds, paired t" in out
    assert "| dropout | 72.0 | magnitude | +22.0 [+17.0, +27.0] (3 seeds, paired t" in out
    # same checkpoint: magnitude prunes the prunable checkpoint (80 / 60); no fine-tuned
    # method in the store, so its gap says n/a instead of nan
    assert "| overall | 12 | 79.0 | magnitude | +9.0" in out and "nan" not in out
