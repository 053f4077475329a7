"""The goal-table benchmark: verdicts on hand-made figures, bad arguments, a real quick run."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from benchmarks.goals import GoalsError, Say, measure, tox_env
from benchmarks.goals.cli import main
from benchmarks.goals.measure import Measured, Sizes
from benchmarks.goals.table import (
    ERROR,
    FAIL,
    PASS,
    ROWS,
    SCHEMA_VERSION,
    Goal,
    Row,
    check_dict,
    parse_only,
    run_row,
    verdict,
)
from benchmarks.goals.tox_env import tox_commands
from queueprof.cli import build_parser
from runs import keyvalue

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.goals", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


# --- verdicts on hand-made figures ------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "measured", "goal", "passed"),
    [
        (">=", 0.35, 0.35, True),
        (">=", 0.349, 0.35, False),
        ("<=", 50.0, 50.0, True),
        ("<=", 50.01, 50.0, False),
        ("==", 0, 0, True),
        ("==", 1, 0, False),
        (">=", math.nan, 0.35, False),
        ("<=", math.nan, 50.0, False),
    ],
)
def test_check_compares_the_figure_with_its_goal(
    comparator: str, measured: float, goal: float, passed: bool
) -> None:
    # GIVEN a figure, a goal and which way it must go
    check = Goal("figure", "figure", comparator, goal, "ms").judge({"figure": measured})
    # WHEN it is judged THEN it passes exactly at or beyond the goal, and a NaN never passes
    assert check.passed is passed
    assert check_dict(check)["passed"] is passed


def test_a_goal_with_an_unknown_comparator_is_refused() -> None:
    # GIVEN / WHEN a goal is declared with a comparator that is not one of the three
    # THEN it is refused, naming the valid ones
    with pytest.raises(ValueError, match=r"comparator '<' is not one of >=, <=, =="):
        Goal("figure", "figure", "<", 2.0, "ms")


def test_a_row_passes_only_when_every_check_passes() -> None:
    # GIVEN the 20-worker row's checks on figures with one goal missed (a busy retry)
    figures = {
        "ratio_to_best": 0.9,
        "claim_max_ms_20": 12.0,
        "sqlite_busy_20": 1,
        "idle_workers_20": 0,
    }
    checks = ROWS["workers_20"].judge(figures)
    # THEN that check fails and so does the row; without the retry the row passes
    assert [c.passed for c in checks] == [True, True, False, True]
    assert verdict(checks) == FAIL
    assert verdict(ROWS["workers_20"].judge({**figures, "sqlite_busy_20": 0})) == PASS


def test_a_row_that_was_not_measured_is_an_error_whatever_its_checks() -> None:
    # GIVEN passing checks but a measurement error, or no checks at all
    checks = (Goal("rate", "tasks_per_s", ">=", 15_000, "tasks/s").judge({"tasks_per_s": 20_000}),)
    # THEN the verdict is ERROR, never PASS
    assert verdict(checks, "GoalsError: the workload failed") == ERROR
    assert verdict(()) == ERROR


@pytest.mark.parametrize(
    ("key", "figures", "expected"),
    [
        ("cycle_1_worker", {"ratio": 0.36}, [True]),
        ("workers_10", {"ratio": 0.69, "idle_workers": 0}, [False, True]),
        # "10 workers" measured with one of them doing everything is no 10-worker figure
        ("workers_10", {"ratio": 0.9, "idle_workers": 9}, [True, False]),
        (
            "processes_10",
            {"tasks_per_s": 16_000, "errors": 0, "lost": 0, "duplicated": 2},
            [True, True, True, False],
        ),
        (
            "op_p50",
            {"enqueue_p50_us": 99, "claim_p50_us": 151, "status_p50_us": 100},
            [True, False, True],
        ),
        ("latency_500", {"e2e_p50_ms": 2, "e2e_p95_ms": 5.1, "e2e_p99_ms": 9}, [True, False, True]),
        (
            "profiler_overhead",
            {
                "pyinstrument_ratio": 1.3,
                "memray_ratio": 1.31,
                "viztracer_ratio": 1.4,
                "py-spy_ratio": 1.06,
            },
            [True, False, True, False],
        ),
        ("perfetto_trace", {"trace_mb": 20.0}, [True]),
        ("analysis_load", {"load_s": 4.0, "rss_ratio": 2.5}, [True, False]),
        ("profile_cpu", {"wall_s": 61.0}, [False]),
    ],
)
def test_each_row_judges_its_figures_against_the_issue_goals(
    key: str, figures: dict[str, float], expected: list[bool]
) -> None:
    # GIVEN hand-made figures for a row WHEN it judges them
    checks = ROWS[key].judge(figures)
    # THEN each check passes or fails as the issue's goal says
    assert [c.passed for c in checks] == expected


def test_a_missing_figure_is_named_with_the_figures_there_are() -> None:
    # GIVEN figures without the one the row judges
    # WHEN the row judges them THEN the error names the missing figure and the present ones
    with pytest.raises(GoalsError, match=r"'ratio' was not measured \(have: raw_tasks_per_s\)"):
        ROWS["cycle_1_worker"].judge({"raw_tasks_per_s": 1.0})


# --- rows run through the table, with hand-made measurements --------------------------------


def _row(key: str, figures: dict[str, float] | BaseException) -> Row:
    def measure_row(sizes: Sizes, scratch: Path, say: Say) -> Measured:
        assert scratch.is_dir()  # each row gets a scratch folder of its own
        if isinstance(figures, BaseException):
            raise figures
        return Measured(dict(figures), notes=["hand-made"])

    goal = (Goal("ratio", "ratio", ">=", 0.5, "x"),)
    return Row(key, f"{key} metric", "-", "ratio >= 0.5x", measure_row, goal)


def test_a_failed_measurement_becomes_the_rows_error_not_a_crash() -> None:
    # GIVEN a row whose workload fails
    row = _row("broken", GoalsError("`queueprof run stress` ended failed"))
    # WHEN it is run
    result = run_row(row, measure.QUICK, quick=True, say=lambda line: None)
    # THEN the row says ERROR with the reason, and the command re-runs that row alone
    assert result.verdict == ERROR
    assert result.error == "GoalsError: `queueprof run stress` ended failed"
    assert result.command == "python -m benchmarks.goals --quick --only broken"
    assert result.to_dict()["verdict"] == ERROR


@pytest.mark.parametrize(
    ("figures", "strict", "exit_code"),
    [
        ({"ratio": 0.6}, False, 0),
        ({"ratio": 0.4}, False, 0),  # a FAIL verdict is a finding, not an error
        ({"ratio": 0.4}, True, 1),
        ({"ratio": 0.6}, True, 0),
        (GoalsError("no such figure"), False, 1),
    ],
)
def test_the_exit_status_reports_errors_and_with_strict_failed_goals(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    figures: dict[str, float] | Exception,
    strict: bool,
    exit_code: int,
) -> None:
    # GIVEN a table of one hand-made row
    monkeypatch.setitem(ROWS, "made", _row("made", figures))
    saved = tmp_path / "out" / "goals.json"
    # WHEN the command runs it and saves the JSON
    code = main(["--only", "made", "--save", str(saved), *(["--strict"] if strict else [])])
    # THEN the exit status follows the verdict and the mode, and the file holds the row
    assert code == exit_code
    document = orjson.loads(saved.read_bytes())
    (row,) = document["rows"]
    assert row["key"] == "made"
    assert document["verdicts"] == {"made": row["verdict"]}


# --- bad arguments ----------------------------------------------------------------------------


def test_only_refuses_an_unknown_row_and_lists_the_valid_ones() -> None:
    # GIVEN / WHEN a row name that does not exist THEN the error names it and every valid row
    with pytest.raises(ValueError, match="'nope' is not a row") as error:
        parse_only("cycle_1_worker,nope")
    assert all(key in str(error.value) for key in ROWS)


def test_only_keeps_the_order_given_and_drops_repeats() -> None:
    assert parse_only("op_p50, cycle_1_worker,op_p50") == ["op_p50", "cycle_1_worker"]
    assert parse_only(None) == list(ROWS)


def test_the_command_exits_2_on_an_unknown_row(tmp_path: Path) -> None:
    # WHEN the command is given a row that does not exist
    done = _run("--only", "throughput", "--save", str(tmp_path / "g.json"))
    # THEN it exits 2, lists the valid rows, and writes nothing
    assert done.returncode == 2
    assert "'throughput' is not a row; valid rows: cycle_1_worker" in done.stderr
    assert not (tmp_path / "g.json").exists()


def test_the_command_exits_2_when_save_names_a_folder(tmp_path: Path) -> None:
    done = _run("--only", "op_p50", "--save", str(tmp_path))
    assert done.returncode == 2
    assert "is a folder; name a JSON file" in done.stderr


# --- tox.ini commands ---------------------------------------------------------------------


def test_the_profile_cpu_commands_are_read_from_tox_ini_with_posargs_in_place() -> None:
    # GIVEN the project's tox.ini WHEN profile-cpu's commands are read with posargs
    commands = tox_commands("profile-cpu", ["--size", "smoke"])
    # THEN each is a queueprof command, the run commands carry the posargs where tox puts them
    assert commands
    assert all(c[0] == "queueprof" for c in commands)
    runs = [c for c in commands if c[1] == "run"]
    assert runs
    assert all(c[-2:] == ["--size", "smoke"] for c in runs)
    assert all("{posargs}" not in c for c in commands)


def test_a_param_the_row_passes_replaces_the_envs_own(tmp_path: Path) -> None:
    # GIVEN the project's profile-trace env, which sets tasks itself (queueprof run refuses
    # a key given twice), and a row that passes its own size for tasks
    (command, _analyze) = tox_commands("profile-trace", ["--quiet", "--param", "tasks=200"])
    # WHEN queueprof run reads that command line
    args = build_parser().parse_args([*command[1:], "--out", str(tmp_path)])
    params = keyvalue.overridden(args.param_default, args.param)
    # THEN the row's value replaces the env's, and the env's other params stay
    assert params == ["worker_counts=5", "tasks=200"]


def test_a_tox_env_that_is_missing_is_named(tmp_path: Path) -> None:
    # GIVEN a tox.ini without the env
    ini = tmp_path / "tox.ini"
    ini.write_text("[testenv:test]\ncommands = pytest\n")
    # WHEN its commands are asked for THEN the error names the file and the section
    with pytest.raises(GoalsError, match=r"no \[testenv:profile-cpu\] with commands"):
        tox_commands("profile-cpu", [], ini)


def test_only_queueprof_commands_are_timed(tmp_path: Path) -> None:
    # GIVEN an env whose commands are not queueprof's
    ini = tmp_path / "tox.ini"
    ini.write_text("[testenv:profile-cpu]\ncommands =\n    pytest {posargs}\n")
    # WHEN the row would time them THEN it refuses, naming the command, before running any
    with pytest.raises(GoalsError, match="'pytest' is not a queueprof command"):
        tox_env.run_tox_commands("profile-cpu", [], tmp_path, lambda line: None, ini)


# --- a real run -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_quick_run_of_two_rows_writes_a_well_formed_json(tmp_path: Path) -> None:
    # GIVEN two cheap rows at quick sizes
    saved = tmp_path / "goals.json"
    # WHEN the command measures them for real
    done = _run("--quick", "--only", "cycle_1_worker,op_p50", "--save", str(saved))
    # THEN it completes (a FAIL verdict is not an error) and prints both rows
    assert done.returncode == 0, done.stderr
    assert "cycle_1_worker:" in done.stdout
    assert "op_p50:" in done.stdout
    assert re.search(r"^\d PASS, \d FAIL, 0 ERROR$", done.stdout, re.MULTILINE)
    document = orjson.loads(saved.read_bytes())
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["kind"] == "goals"
    assert document["quick"] is True
    assert document["environment"]["sqlite"]["version"]
    assert [r["key"] for r in document["rows"]] == ["cycle_1_worker", "op_p50"]
    cycle, ops = document["rows"]
    # ... with real figures: both sides of the ratio measured, and the ratio is theirs
    assert cycle["figures"]["raw_tasks_per_s"] > 0
    assert cycle["figures"]["queue_tasks_per_s"] > 0
    assert 0 < cycle["figures"]["ratio"] < 10
    assert {c["name"] for c in ops["checks"]} == {"enqueue", "claim", "status"}
    assert all(ops["figures"][f"{op}_p50_us"] > 0 for op in ("enqueue", "claim", "status"))
    # ... and each verdict agrees with its checks
    for row in document["rows"]:
        assert row["error"] is None
        assert row["loadavg_1m"]["before"] >= 0  # the machine's load is part of the figures
        passed = all(c["passed"] for c in row["checks"])
        assert row["verdict"] == (PASS if passed else FAIL)
        assert document["verdicts"][row["key"]] == row["verdict"]
        assert row["command"] == f"python -m benchmarks.goals --quick --only {row['key']}"
        assert row["sources"] or row["key"] == "cycle_1_worker"


def test_ctrl_c_keeps_the_rows_measured_so_far(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN two rows, the second interrupted by Ctrl-C
    monkeypatch.setitem(ROWS, "first", _row("first", {"ratio": 0.6}))
    monkeypatch.setitem(ROWS, "second", _row("second", KeyboardInterrupt()))
    saved = tmp_path / "goals.json"
    # WHEN the command runs them
    code = main(["--only", "first,second", "--save", str(saved)])
    # THEN it exits 130 and the file holds the first row, marked as an interrupted run
    assert code == 130
    document = orjson.loads(saved.read_bytes())
    assert [r["key"] for r in document["rows"]] == ["first"]
    assert document["machine_load"]["interrupted"] is True


def test_a_load_child_without_figures_is_named_not_misread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN an analysis-load child that prints something other than its figures
    monkeypatch.setattr(measure, "LOAD_CHILD", "print('loaded, somehow')")
    # WHEN the row measures a small trace with it
    # THEN it fails with what the child printed, and the trace file is gone
    with pytest.raises(GoalsError, match=r"printed no seconds/peak_kib.*loaded, somehow"):
        measure.measure_analysis_load(Sizes(load_mb=0.05), tmp_path, lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_ratio_rounds_judge_each_sides_best_round_and_report_the_round_ratios() -> None:
    # GIVEN rounds in which the machine's speed flipped: sqlite3's fast rounds are the queue's
    # slow ones
    raw = iter([100.0, 60.0, 100.0, 60.0])
    queue = iter([50.0, 80.0, 50.0, 80.0])
    said: list[str] = []
    # WHEN the rounds run (order alternating: raw first in even rounds)
    figures = measure._ratio_rounds(4, lambda _: next(raw), lambda _: next(queue), said.append)
    # THEN the judged ratio is best against best, and the per-round ratios are reported
    assert figures["ratio"] == pytest.approx(80.0 / 100.0)
    assert (figures["raw_tasks_per_s"], figures["queue_tasks_per_s"]) == (100.0, 80.0)
    assert figures["lowest_round_ratio"] == pytest.approx(0.5)
    assert figures["highest_round_ratio"] == pytest.approx(80.0 / 60.0)
    assert figures["median_round_ratio"] == pytest.approx((0.5 + 80.0 / 60.0) / 2)
    assert len(said) == 4


@pytest.mark.slow
def test_the_quick_worker_rows_give_every_worker_work(tmp_path: Path) -> None:
    # GIVEN the worker rows at --quick sizes (2,000 tasks on 10 engines left 1-3 idle, 300
    # on 20 engines 17-18)
    # WHEN they run
    ten = measure.measure_workers_10(measure.QUICK, tmp_path, lambda line: None)
    twenty = measure.measure_workers_20(measure.QUICK, tmp_path, lambda line: None)
    # THEN every engine did work in every round and sweep
    assert ten.figures["idle_workers"] == 0
    assert twenty.figures["idle_workers_20"] == 0
