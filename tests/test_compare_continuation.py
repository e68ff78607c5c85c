"""benchmarks/compare_continuation.py: settings of the continuation benchmark read over sampling seeds."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_continuation.py"
sys.path.insert(0, str(SCRIPT.parent))  # the script imports benchmarks/common.py, as it does when run
spec = importlib.util.spec_from_file_location("compare_continuation", SCRIPT)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def write_run(path: Path, seed: int, carry: dict[str, float], layout: dict[str, float]) -> None:
    """A file shaped as bench_continuation.py --json writes it (the keys this script reads)."""
    cases = []
    for key in carry:
        cases.append({"case": {"key": key, "name": f"style {key}"},
                      "figures": {"nuwa-inf": {"carry": carry[key], "layout": layout[key], "border_vs_truth": 1.0},
                                  "other seed": {"carry": 0.1, "layout": 0.2},
                                  "PatchMatch": None}})
    path.write_text(json.dumps({"settings": {"seed": seed}, "cases": cases}))


def test_mean_half_range_and_paired_differences(tmp_path):
    for seed, (a, b) in enumerate([(0.30, 0.28), (0.34, 0.31), (0.32, 0.33)]):
        write_run(tmp_path / f"base_s{seed}.json", seed, {"0_day": a}, {"0_day": 0.4})
        write_run(tmp_path / f"lever_s{seed}.json", seed, {"0_day": b}, {"0_day": 0.5})
    rows = compare.summarise({"base": compare.load_runs(str(tmp_path / "base_s*.json")),
                              "lever": compare.load_runs(str(tmp_path / "lever_s*.json"))})
    base, lever = rows
    assert base["seeds"] == [0, 1, 2] and "delta" not in base
    assert base["carry"] == pytest.approx((0.32, 0.02))
    assert lever["carry"] == pytest.approx((0.92 / 3, 0.025))
    carry = lever["delta"]["carry"]
    assert carry["mean"] == pytest.approx((-0.02 - 0.03 + 0.01) / 3)
    assert (carry["lower"], carry["higher"]) == (2, 1)
    assert lever["delta"]["layout"]["higher"] == 3


def test_differences_are_paired_only_on_shared_seeds(tmp_path):
    write_run(tmp_path / "a_s0.json", 0, {"k": 0.5}, {"k": 0.5})
    write_run(tmp_path / "a_s1.json", 1, {"k": 0.1}, {"k": 0.5})
    write_run(tmp_path / "b_s1.json", 1, {"k": 0.2}, {"k": 0.5})
    rows = compare.summarise({"a": compare.load_runs(str(tmp_path / "a_*.json")),
                              "b": compare.load_runs(str(tmp_path / "b_*.json"))})
    delta = rows[1]["delta"]["carry"]
    assert delta["seeds"] == [1] and delta["mean"] == pytest.approx(0.1)


def test_bad_input_is_one_line_and_exit_two(tmp_path):
    write_run(tmp_path / "x1.json", 0, {"k": 0.5}, {"k": 0.5})
    write_run(tmp_path / "x2.json", 0, {"k": 0.4}, {"k": 0.5})  # the same seed twice
    (tmp_path / "junk.json").write_text("{not json")
    for pattern in ("x*.json", "junk.json", "none*.json"):
        proc = subprocess.run([sys.executable, str(SCRIPT), f"s={tmp_path / pattern}"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
