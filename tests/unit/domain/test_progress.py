"""Progress and ETA arithmetic of the broadcast list (domain/progress.py)."""

from __future__ import annotations

from broadcaster.domain.progress import eta_seconds, progress


def test_progress_is_the_share_that_left_the_queue():
    assert progress(4, 4) == 0.0
    assert progress(4, 1) == 0.75
    assert progress(4, 0) == 1.0
    assert progress(0, 0) == 1.0  # nothing to send is done
    assert progress(3, 5) == 0.0  # a count ahead of the poller's copy never goes negative


def test_eta_is_the_remaining_segments_at_the_rate_rounded_up():
    assert eta_seconds(0, 1.0) == 0
    assert eta_seconds(10, 1.0) == 10
    assert eta_seconds(10, 3.0) == 4
    assert eta_seconds(10, None) is None
    assert eta_seconds(10, 0.0) is None
