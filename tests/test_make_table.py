"""The README table's generator (benchmarks/make_table.py) renders each result file."""

import json
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import make_table  # noqa: E402


def test_serve_mixed_load_has_rows_with_latency_failures_memory_and_machine(tmp_path, monkeypatch):
    """bench_serve.py's mixed load (issue 26) was written but never reached the table."""
    mixed = json.loads((BENCH / "results" / "serve_mixed.json").read_text())
    mixed["search_ms"].update(p50=1234.4, p95=2345.6)
    mixed["add_ms"].update(p50=7001.0, p95=9002.0)
    mixed["server_rss_mb"].update(start=1111, peak=1999)
    mixed["machine"]["cores"] = 3
    mixed["failed"] = 4
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "serve_mixed.json").write_text(json.dumps(mixed))
    monkeypatch.setattr(make_table, "ROOT", tmp_path)
    rows = [r for r in make_table.rows() if "mixed load" in r]
    assert len(rows) == 2, rows
    searches, additions = rows
    for needle in ("p50 1234 ms", "p95 2346 ms", "4 of 1,000 failed", "peak RSS 1,999 MB"):
        assert needle in searches, (needle, searches)
    assert "p50 7001 ms, p95 9002 ms" in additions and "nothing else: True" in additions
    assert all(r.endswith("| 3 CPU cores, server 1 thread, load average 17 |") for r in rows)

    mixed["index_after_restart"]["only_acknowledged_in_file"] = False
    (results / "serve_mixed.json").write_text(json.dumps(mixed))
    assert "nothing else: False" in [r for r in make_table.rows() if "mixed load" in r][1]
