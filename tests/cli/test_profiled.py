"""A profiled run's plumbing: the queue options a profiler adds under the user's."""

from __future__ import annotations

from queueprof.profiled import _under


def test_a_queue_option_both_the_profiler_and_the_user_set_is_not_given_twice() -> None:
    # GIVEN py-spy's capture_sql=true WHEN the user sets capture_sql too THEN the user's
    # value is the only one (a key given twice is refused since keys must be unique)
    assert _under("capture_sql=false,claim_batch=3", "capture_sql=true") == (
        "capture_sql=false,claim_batch=3"
    )
    assert _under("", "capture_sql=true") == "capture_sql=true"
    assert _under("claim_batch=3", "capture_sql=true") == "capture_sql=true,claim_batch=3"
