"""EXPLAIN QUERY PLAN flags scans and temp B-trees, and passes the queue's own statements."""

from __future__ import annotations

import pytest

from analysis.sqlplan import explain, parameter_names
from taskqueue import sql


@pytest.mark.parametrize("name", sorted(sql.PLANNED))
def test_the_queues_planned_statements_pass(name: str) -> None:
    plan = explain(sql.PLANNED[name])
    assert plan.error is None
    assert plan.lines
    assert not plan.flagged, plan.lines


@pytest.mark.parametrize("statement", [sql.INSERT, sql.INSERT_MANY, "BEGIN IMMEDIATE", "COMMIT"])
def test_writes_and_transaction_control_are_not_flagged(statement: str) -> None:
    assert not explain(statement).flagged


def test_a_planted_bad_statement_is_flagged() -> None:
    # GIVEN an ORDER BY on a column no index covers, with a named parameter
    plan = explain("SELECT id FROM tasks WHERE payload = :payload ORDER BY created_at LIMIT :n")
    # THEN both the full scan and the sort are flagged, with the plan lines
    assert plan.full_scans == ("SCAN tasks",)
    assert plan.temp_btrees == ("USE TEMP B-TREE FOR ORDER BY",)


def test_an_alias_does_not_hide_a_scan() -> None:
    assert explain("SELECT * FROM tasks AS t WHERE t.error = ?").full_scans == ("SCAN t",)


def test_parameters_inside_literals_and_comments_are_not_bound() -> None:
    names, positional = parameter_names("SELECT ':x', '?', \"@y\" -- :z\n, :a, ?2, @b")
    assert names == ["a", "b"]
    assert positional == 2


def test_a_statement_that_cannot_be_planned_says_why() -> None:
    plan = explain("SELECT * FROM no_such_table")
    assert not plan.flagged
    assert plan.error is not None
    assert "no_such_table" in plan.error


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM tasks WHERE state = 'pending'",
        "SELECT sum(attempts) FROM tasks WHERE state = 'pending' AND priority = :p",
        "SELECT priority, count(*) FROM tasks WHERE state = 'pending' GROUP BY priority",
    ],
)
def test_an_aggregate_over_an_index_range_is_flagged(statement: str) -> None:
    # GIVEN an aggregate whose plan is a SEARCH of the pending index: it returns one row
    # (or a few), yet reads every pending row on each call
    plan = explain(statement)
    # THEN the range it reads is flagged, though the plan has no scan and no sort
    assert plan.error is None
    assert not plan.full_scans
    assert not plan.temp_btrees
    assert plan.range_aggregates == tuple(line for line in plan.lines if "SEARCH" in line)
    assert plan.flagged


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT max(id) FROM tasks",  # min/max optimisation: one row read
        "SELECT min(priority) FROM tasks WHERE state = 'pending'",
        "SELECT sum(attempts) FROM tasks WHERE id = ?",  # one row by its key
        "SELECT NOT EXISTS (SELECT 1 FROM tasks WHERE state = 'pending')",  # stops at one
        "SELECT id FROM tasks WHERE state = 'pending' ORDER BY priority DESC, run_at, id LIMIT 5",
    ],
)
def test_aggregates_that_read_one_row_and_plain_reads_are_not(statement: str) -> None:
    plan = explain(statement)
    assert plan.error is None
    assert plan.range_aggregates == ()
    assert not plan.flagged, plan.lines


WRONG_ORDER = (
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, state TEXT, priority INTEGER, run_at REAL);\n"
    "CREATE INDEX tasks_ready ON tasks (priority DESC, run_at, id, state);\n"
)


def test_a_walk_of_a_whole_index_is_a_scan() -> None:
    # GIVEN an index of every row in the wrong column order, taken for the ORDER BY
    plan = explain(
        "SELECT id FROM tasks WHERE state = 'pending' ORDER BY priority DESC, run_at, id LIMIT :n",
        WRONG_ORDER,
    )
    # THEN walking it is flagged: it passes every row that fails the WHERE
    assert plan.full_scans == ("SCAN tasks USING COVERING INDEX tasks_ready",)


def test_a_walk_of_a_partial_index_is_not_a_scan() -> None:
    # GIVEN the same walk of an index that holds only the rows of its own WHERE
    partial = WRONG_ORDER.replace(", state);", ", state) WHERE state = 'pending';")
    plan = explain(
        "SELECT id FROM tasks WHERE state = 'pending' ORDER BY priority DESC, run_at, id LIMIT :n",
        partial,
    )
    # THEN it reads no other row: not flagged
    assert plan.lines
    assert not plan.flagged, plan.lines
