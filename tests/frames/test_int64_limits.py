"""Timestamps near the int64 limits and oversized requests: exact bins or a ParameterError, never a wrap.

Window edges and bin offsets are computed as uint64 offsets from the first edge; these
cases overflowed int64 arithmetic (wrong windows, and an out-of-bounds write in the audio
kernel) before.
"""
from __future__ import annotations

import numpy as np
import pytest

from eventkit.audio import to_audio_frames
from eventkit.errors import ParameterError
from eventkit.events import make_audio_events, make_events
from eventkit.frames import to_frames, to_frames_by_duration, to_frames_by_event_count

M = int(np.iinfo(np.int64).max)
LOW = -M - 1


def _per_frame(frames: np.ndarray) -> list[int]:
    return frames.reshape(frames.shape[0], -1).sum(axis=1).tolist()


def test_duration_windows_at_the_top_of_int64():
    ev = make_events([M - 10, M - 5, M - 1], [0, 1, 2], [0, 0, 0], [0, 0, 0])
    assert _per_frame(to_frames_by_duration(ev, (4, 1, 1), duration_us=1000)) == [3]
    # windows [M-10, M-6), [M-6, M-2), [M-2, M+2)
    assert _per_frame(to_frames_by_duration(ev, (4, 1, 1), duration_us=4)) == [1, 1, 1]
    assert _per_frame(to_frames_by_duration(ev, (4, 1, 1), duration_us=4, include_incomplete=False)) == [1, 1]


def test_duration_windows_across_the_whole_int64_range():
    ev = make_events([LOW, 0, M], [0, 1, 2], [0, 0, 0], [0, 0, 0])
    d = 2**62
    # windows from LOW: [LOW, LOW+d), ..., 0 lies in window 2, M in window 3
    assert _per_frame(to_frames_by_duration(ev, (4, 1, 1), duration_us=d)) == [1, 0, 1, 1]


@pytest.mark.parametrize("T, expected", [(2, [1, 2]), (3, [1, 1, 1])])
def test_time_split_with_a_span_over_2_63(T, expected):
    big = 2**62 + 2**61
    ev = make_events([-big, 0, big], [0, 1, 2], [0, 0, 0], [0, 0, 0])
    assert _per_frame(to_frames(ev, (4, 1, 1), T=T, split_by="time")) == expected


def test_audio_time_bins_far_from_start_do_not_wrap():
    ev = make_audio_events([M - 1] * 5, [0] * 5, [0] * 5)
    # (t - start) exceeds int64: bin (M - 1 + 10) // 2**62 = 2
    assert to_audio_frames(ev, (1, 1, 1), dt_us=2**62, T=3, start_us=-10).ravel().tolist() == [0, 0, 5]
    # bin 4 >= T: dropped (and no write outside the output)
    assert to_audio_frames(ev, (1, 1, 1), dt_us=2**61, T=2, start_us=-10).ravel().tolist() == [0, 0]
    assert to_audio_frames(ev, (1, 1, 1), dt_us=2**61, T=2, start_us=-10,
                           overflow="clip").ravel().tolist() == [0, 5]


@pytest.mark.parametrize("call, name", [
    (lambda ev: to_frames(ev, (1, 1, 1), T=2**62), "T=4611686018427387904"),
    (lambda ev: to_frames(ev, (128, 128, 2), T=10**9), "1000000000 frames"),
    (lambda ev: to_frames_by_duration(ev, (1, 1, 1), duration_us=1, start_us=-2**62), "duration_us=1"),
    (lambda ev: to_frames_by_duration(ev, (1, 1, 1), duration_us=1, start_us=2**70), "start_us must fit"),
    (lambda ev: to_frames_by_duration(ev, (1, 1, 1), duration_us=2**70), "duration_us must fit"),
    (lambda ev: to_frames_by_event_count(ev, (1, 1, 1), event_count=2**70), "event_count must fit"),
])
def test_oversized_requests_are_parameter_errors(call, name):
    ev = make_events([1, 2, 3], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    with pytest.raises(ParameterError, match=name):
        call(ev)


@pytest.mark.parametrize("kw, name", [
    (dict(dt_us=10, T=2, start_us=2**70), "start_us must fit"),
    (dict(dt_us=2**70, T=2), "dt_us must fit"),
    (dict(dt_us=1, start_us=-2**62), "do not fit in memory"),
    (dict(dt_us=10, T=2**62), "T=4611686018427387904"),
])
def test_audio_oversized_requests_are_parameter_errors(kw, name):
    ev = make_audio_events([1, 2], [0, 0], [0, 0])
    with pytest.raises(ParameterError, match=name):
        to_audio_frames(ev, (1, 1, 1), **kw)
