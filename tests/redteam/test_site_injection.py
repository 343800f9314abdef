"""Site injection: results files with markup in every text field, and out-of-range values. The
site escapes the text and skips the file with a reason instead of failing."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench.leaderboard.site import build_site
from hostile import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "leaderboard" / "results"
T2M = "era5-64x32-12to4-t2m"
SCRIPT = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def results_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    return copy


def test_markup_in_results_is_shown_as_text(tmp_path):
    results = results_copy(tmp_path)
    raw = json.loads((results / T2M / "example-code.json").read_text())
    raw["submission"].update(name="evil", description=SCRIPT, license=SCRIPT, authors=[SCRIPT], code_url="javascript:alert(1)")
    raw["provenance"]["isolation"] = SCRIPT
    (results / T2M / "evil.json").write_text(json.dumps(raw))
    report = build_site(results, tmp_path / "site")
    pages = "".join(p.read_text() for p in (tmp_path / "site").rglob("*.html"))
    assert "<script>alert" not in pages and "onerror=alert" not in pages.replace("onerror=alert(1)&gt;", "")
    assert 'href="javascript:' not in pages
    assert not report.skipped


OUT_OF_RANGE = [
    ("negative-rmse", lambda raw: raw["metrics"]["2m_temperature"]["physical"]["rmse"].__setitem__(0, -1.0), "is outside 0..1e+09"),
    ("acc-above-one", lambda raw: raw["metrics"]["2m_temperature"]["physical"]["acc"].__setitem__(0, 5.0), "is outside"),
    ("huge-bias", lambda raw: raw["metrics"]["2m_temperature"]["physical"]["bias"].__setitem__(0, 1e300), "is outside"),
    ("nan", lambda raw: raw["metrics"]["2m_temperature"]["physical"]["mae"].__setitem__(0, math.nan), "is not a finite number"),
    ("negative-map", lambda raw: raw["error_maps"]["2m_temperature"]["rmse"][0].__setitem__(0, -3.0), "error_maps.2m_temperature"),
    ("bool-parameters", lambda raw: raw["submission"].__setitem__("parameters", True), "is not a parameter count"),
]


@pytest.mark.parametrize("mutate, fragment", [o[1:] for o in OUT_OF_RANGE], ids=[o[0] for o in OUT_OF_RANGE])
def test_out_of_range_results_are_skipped_with_a_reason(tmp_path, mutate, fragment):
    results = results_copy(tmp_path)
    raw = json.loads((results / T2M / "example-code.json").read_text())
    raw["submission"]["name"] = "odd"
    mutate(raw)
    (results / T2M / "odd.json").write_text(json.dumps(raw))
    report = build_site(results, tmp_path / "site")
    assert [(p.name, fragment in reason) for p, reason in report.skipped] == [("odd.json", True)], report.skipped
    assert (tmp_path / "site" / "index.html").is_file()
