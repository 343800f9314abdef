"""Provenance lines for boards and submission pages: how to re-derive them, from which data, by which
harness, and when ``bench reproduce`` last found them equal (its JSON report beside the results)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.leaderboard.board import Board, Entry
from bench.reproduce import read_report, report_key, reproduce_command
from bench.results import recorded_store

REPORT_NAME = "reproduce.json"


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """What a reader needs to re-derive a board or one submission on it."""

    command: str
    data_title: str
    data_fingerprint: str
    store: str
    harness_versions: str
    last_success: str | None  # date (YYYY-MM-DD) of the last bench reproduce that found it all equal
    status: str  # a sentence for the page

    @property
    def data_label(self) -> str:
        return f"{self.data_title or 'untitled data'} ({self.store}, fingerprint {self.data_fingerprint})"


def report_beside(results_dir: Path) -> dict | None:
    """The reproduce report committed beside the results folder (``leaderboard/reproduce.json``)."""
    return read_report(Path(results_dir).parent / REPORT_NAME)


def data_store(data: dict) -> str:
    """A results file's store name, for a page ("STORE" where the file names none)."""
    return recorded_store(data) or "STORE"


def _report_entries(report: dict | None) -> dict[tuple, dict]:
    return {report_key(e): e for e in (report or {}).get("entries", []) if isinstance(e, dict)}


def _record(records: dict[tuple, dict], board: Board, entry: Entry) -> dict | None:
    """The report's entry for this results file (older reports: one per task and submission)."""
    exact = records.get((board.key.task_name, entry.name, entry.path.name))
    if exact is not None:
        return exact
    return next((r for k, r in records.items() if k[:2] == (board.key.task_name, entry.name) and k[2] is None), None)


def _day(timestamp: str | None) -> str | None:
    return str(timestamp)[:10] if timestamp else None


def _versions(entries: list[Entry]) -> str:
    found = sorted({str(e.results.provenance.get("harness_version") or "?") for e in entries})
    return ", ".join(found)


def _rescored_after(entry: Entry, record: dict) -> bool:
    """Whether the committed file was scored after the report's last re-derivation (so it checked another file)."""
    scored = str(entry.results.provenance.get("evaluated_at") or "")
    checked = str(record.get("last_equal_at") or record.get("reproduced_at") or "")
    return bool(scored and checked and scored > checked)  # ISO 8601 UTC stamps order as text


def _matches(entry: Entry, record: dict | None, report: dict | None) -> bool:
    """A report entry speaks for this result only if it re-derived this very file on the same data."""
    if not record or _rescored_after(entry, record):
        return False
    recorded = record.get("data_fingerprint") or (report or {}).get("data", {}).get("fingerprint")
    return recorded in (None, entry.results.data.get("fingerprint"))


def entry_reproduction(board: Board, entry: Entry, report: dict | None) -> Reproduction:
    """One submission's line: ``bench reproduce --task T --only NAME --data STORE`` and its last success."""
    record = _record(_report_entries(report), board, entry)
    ok = _matches(entry, record, report)
    last = _day(record.get("last_equal_at")) if ok else None
    if not record:
        status = "not yet re-derived by bench reproduce"
    elif _rescored_after(entry, record):
        status = (f"scored on {_day(entry.results.provenance.get('evaluated_at'))}, after the last bench reproduce "
                  f"({_day(record.get('reproduced_at'))}); not yet re-derived")
    elif record.get("status") in ("equal", "rewritten"):
        status = f"re-derived and equal on {last}"
    else:
        status = f"last bench reproduce ({_day(record.get('reproduced_at'))}) found it {record.get('status')}" + (
            f"; last equal on {last}" if last else "")
    data = entry.results.data
    return Reproduction(reproduce_command(board.key.task_name, {"store": data_store(data)}, entry.name),
                        str(data.get("title") or ""), board.key.data_fingerprint, data_store(data),
                        _versions([entry]), last, status)


def board_reproduction(board: Board, report: dict | None) -> Reproduction:
    """A board's line: every entry on it must have been found equal; the date is the oldest of theirs."""
    records = _report_entries(report)
    lasts = []
    for entry in board.entries:
        record = _record(records, board, entry)
        lasts.append(_day(record.get("last_equal_at")) if _matches(entry, record, report) else None)
    last = min(lasts) if lasts and all(lasts) else None
    done = sum(1 for d in lasts if d)
    status = (f"all {len(lasts)} results re-derived and equal (last on {last})" if last
              else f"{done} of {len(lasts)} results re-derived and equal by bench reproduce")
    data = board.entries[0].results.data if board.entries else {}
    return Reproduction(reproduce_command(board.key.task_name, {"store": data_store(data)}),
                        str(data.get("title") or ""), board.key.data_fingerprint, data_store(data),
                        _versions(board.entries), last, status)
