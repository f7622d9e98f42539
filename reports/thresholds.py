"""Per-metric regression thresholds for ``sentryfuse check``, with a TOML override file.

Relative metrics are in percent of the baseline value; accuracy is in absolute points
(accuracy is already a percentage, so "1% worse" would be ambiguous). Example file::

    # thresholds.toml — every key optional
    latency_p50 = 5.0            # % slower than baseline
    latency_p99 = 10.0           # % slower than baseline
    energy_per_inference = 10.0  # % more energy per inference
    accuracy = 0.5               # points lower
    peak_memory = 10.0           # % more peak memory
    alpha = 0.05                 # 1 - the confidence level of the trial-level intervals

Keys may also sit under a ``[thresholds]`` table. Unknown keys are errors that name the
file, the key and the nearest valid key, so a typo never silently disables a check.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.errors import ProfileError, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Thresholds:
    """How much worse a metric may get before ``check`` calls it a regression."""

    latency_p50: float = 5.0  # relative %
    latency_p99: float = 10.0  # relative %
    energy_per_inference: float = 10.0  # relative %
    accuracy: float = 0.5  # absolute points
    peak_memory: float = 10.0  # relative %
    alpha: float = 0.05  # the trial-level intervals are (1 - alpha) two-sided

    def describe(self) -> str:
        """One line for the check's header."""
        return (
            f"latency p50 +{self.latency_p50:g}%, latency p99 +{self.latency_p99:g}%, "
            f"energy/inference +{self.energy_per_inference:g}% (each on trial figures, "
            f"{1 - self.alpha:.0%} intervals), accuracy −{self.accuracy:g} points (over "
            f"seeds), peak memory +{self.peak_memory:g}% (threshold only)"
        )


METRICS = tuple(f.name for f in dataclasses.fields(Thresholds))


def load_thresholds(path: str | Path | None) -> Thresholds:
    """Defaults, overridden by the TOML file at ``path`` when given."""
    if path is None:
        return Thresholds()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProfileError(f"thresholds file '{p}' does not exist; check the path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read thresholds file '{p}' ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"thresholds file '{p}' is not valid TOML ({exc})") from exc
    if isinstance(data.get("thresholds"), dict):
        extra = [k for k in data if k != "thresholds"]
        data = {**data["thresholds"], **{k: data[k] for k in extra}}
    values: dict[str, float] = {}
    for key, value in data.items():
        if key not in METRICS:
            raise ProfileError(f"thresholds file '{p}': {unknown_name('metric', key, METRICS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ProfileError(
                f"thresholds file '{p}': '{key}' must be a non-negative number, got {value!r}"
            )
        values[key] = float(value)
    if "alpha" in values and not 0 < values["alpha"] < 1:
        raise ProfileError(f"thresholds file '{p}': 'alpha' must be between 0 and 1")
    return Thresholds(**values)
