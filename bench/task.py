"""The frozen task spec: grid, time windows, variables and splits, loaded from YAML.

A spec's fingerprint (sha256 of its canonical JSON) is written into every result;
a spec whose fingerprint differs from the frozen one is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bench.errors import SpecDriftError, TaskSpecError

# Fingerprints of the released task specs. Changing a task means a new task name.
FROZEN_FINGERPRINTS: dict[str, str] = {
    "era5-64x32-12to4-t2m": "5602fdc7e447f07d",
    "era5-64x32-12to4-multivar": "40a523b974656cc4",
}
DEFAULT_TASK = "era5-64x32-12to4-t2m"


@dataclasses.dataclass(frozen=True)
class AxisSpec:
    """An evenly spaced coordinate axis: first, last and step (degrees)."""

    first: float
    last: float
    step: float

    @property
    def values(self) -> np.ndarray:
        n = int(round((self.last - self.first) / self.step)) + 1
        return self.first + self.step * np.arange(n)

    def matches(self, coordinate: np.ndarray, tolerance_deg: float = 1e-3) -> bool:
        """Whether ``coordinate`` is this axis, point for point, within ``tolerance_deg``."""
        have = np.asarray(coordinate, dtype=np.float64)
        return have.shape == self.values.shape and bool(np.allclose(have, self.values, atol=tolerance_deg))


@dataclasses.dataclass(frozen=True)
class GridSpec:
    """A regular latitude/longitude grid, latitude ascending."""

    name: str
    latitude: AxisSpec
    longitude: AxisSpec

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.latitude.values), len(self.longitude.values))


@dataclasses.dataclass(frozen=True)
class ChannelSpec:
    """One forecast channel: a WeatherBench2 variable, at a pressure level if it has one."""

    name: str
    units: str
    plausible_range: tuple[float, float]
    level: int | None = None

    @property
    def key(self) -> str:
        """Channel name used in arrays and results, e.g. ``geopotential_500``."""
        return self.name if self.level is None else f"{self.name}_{self.level}"


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """A split of valid times: every target of an init time lies in [first, last] (days)."""

    first: str
    last: str

    @property
    def first_time(self) -> pd.Timestamp:
        return pd.Timestamp(self.first)

    @property
    def last_time(self) -> pd.Timestamp:
        """The last 6-hourly step of the split's last day is 18 UTC; any time that day counts."""
        return pd.Timestamp(self.last) + pd.Timedelta(hours=23, minutes=59)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A frozen forecasting task: ``input_steps`` past fields -> ``output_steps`` future ones."""

    name: str
    description: str
    grid: GridSpec
    time_step_hours: int
    input_steps: int
    output_steps: int
    channels: tuple[ChannelSpec, ...]
    splits: dict[str, SplitSpec]
    climatology_window_days: int

    @property
    def time_step(self) -> pd.Timedelta:
        return pd.Timedelta(hours=self.time_step_hours)

    @property
    def lead_hours(self) -> list[int]:
        return [self.time_step_hours * (k + 1) for k in range(self.output_steps)]

    @property
    def channel_keys(self) -> list[str]:
        return [c.key for c in self.channels]

    def channel(self, key: str) -> ChannelSpec:
        for c in self.channels:
            if c.key == key:
                return c
        raise KeyError(key)

    def input_offsets(self) -> np.ndarray:
        """Offsets from the init time of the input fields, oldest first (t-66h .. t0)."""
        return np.arange(-(self.input_steps - 1), 1) * self.time_step

    def target_offsets(self) -> np.ndarray:
        """Offsets from the init time of the target fields (t+6h .. t+24h)."""
        return np.arange(1, self.output_steps + 1) * self.time_step

    def to_canonical(self) -> dict:
        """Plain-data form of the spec; its JSON is what the fingerprint hashes."""
        return dataclasses.asdict(self)

    @cached_property
    def fingerprint(self) -> str:
        text = json.dumps(self.to_canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse(raw: dict, source: str) -> TaskSpec:
    try:
        grid = raw["grid"]
        return TaskSpec(
            name=str(raw["name"]),
            description=" ".join(str(raw.get("description", "")).split()),
            grid=GridSpec(
                name=str(grid["name"]),
                latitude=AxisSpec(**{k: float(v) for k, v in grid["latitude"].items()}),
                longitude=AxisSpec(**{k: float(v) for k, v in grid["longitude"].items()}),
            ),
            time_step_hours=int(raw["time_step_hours"]),
            input_steps=int(raw["input_steps"]),
            output_steps=int(raw["output_steps"]),
            channels=tuple(
                ChannelSpec(
                    name=str(v["name"]),
                    units=str(v["units"]),
                    plausible_range=(float(v["plausible_range"][0]), float(v["plausible_range"][1])),
                    level=int(v["level"]) if v.get("level") is not None else None,
                )
                for v in raw["variables"]
            ),
            splits={k: SplitSpec(first=str(s["first"]), last=str(s["last"])) for k, s in raw["splits"].items()},
            climatology_window_days=int(raw["climatology"]["smoothing_window_days"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TaskSpecError(f"task spec {source} is malformed ({exc!r}); restore it from git") from exc


def _builtin_spec_files() -> dict[str, Path]:
    folder = resources.files("bench") / "tasks"
    files = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            raw = yaml.safe_load(entry.read_text())
            files[raw["name"]] = Path(str(entry))
    return files


def task_names() -> list[str]:
    """Names of the frozen tasks shipped with the harness."""
    return sorted(FROZEN_FINGERPRINTS)


def read_task(name_or_path: str | Path) -> TaskSpec:
    """Read a task spec by frozen name or YAML path, without the drift check."""
    text = str(name_or_path)
    builtin = _builtin_spec_files()
    if text in builtin:
        path = builtin[text]
    else:
        path = Path(text)
        if not path.is_file():
            raise TaskSpecError(
                f"no task named or at {text!r}; frozen tasks are: {', '.join(task_names())}"
            )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise TaskSpecError(f"task spec {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TaskSpecError(f"task spec {path} is not a mapping")
    return _parse(raw, str(path))


def check_frozen(spec: TaskSpec) -> TaskSpec:
    """Refuse a spec that is not one of the frozen tasks, byte for byte in meaning."""
    frozen = FROZEN_FINGERPRINTS.get(spec.name)
    if frozen is None:
        raise TaskSpecError(
            f"task {spec.name!r} is not a frozen benchmark task; use one of: {', '.join(task_names())}"
        )
    if spec.fingerprint != frozen:
        raise SpecDriftError(
            f"task spec {spec.name!r} has fingerprint {spec.fingerprint} but the frozen one is {frozen}: "
            "the spec was modified. Restore bench/tasks/ from git (git checkout bench/tasks); "
            "a changed task needs a new task name"
        )
    return spec


def load_task(name_or_path: str | Path = DEFAULT_TASK) -> TaskSpec:
    """Load a frozen task by name or path; refuses any spec that drifted from the frozen one."""
    return check_frozen(read_task(name_or_path))
