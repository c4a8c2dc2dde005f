"""N-TIDIGITS18: CochleaAMS address decoding and frames of the real SLAYER .bs1 utterance."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.audio import (
    audio_events_from_addresses,
    cochlea_sensor_size,
    decode_cochlea_address,
    encode_cochlea_address,
    pool_channels,
    to_audio_frames,
)
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import AUDIO_DTYPE
from tests.audio.naive import frames_loop
from tests.conftest import shared_file


def raw_address(channel: int, ear: int, lpf: int, threshold: int) -> int:
    """CochleaAMS1c address as drawn in jAER's Extractor javadoc: TH1:0 | CH5:0 | EAR | LPFBPF."""
    return threshold * 256 + channel * 4 + ear * 2 + lpf


def read_bs1_local(path) -> np.ndarray:
    """Independent decoder: 5-byte big-endian records, 16-bit channel, 1-bit polarity, 23-bit µs."""
    raw = np.fromfile(path, dtype=np.uint8)
    assert raw.size % 5 == 0
    r = raw.reshape(-1, 5).astype(np.int64)
    out = np.empty(r.shape[0], dtype=AUDIO_DTYPE)
    out["x"] = r[:, 0] * 256 + r[:, 1]
    out["p"] = r[:, 2] // 128
    out["t"] = (r[:, 2] % 128) * 65536 + r[:, 3] * 256 + r[:, 4]
    return out


# --------------------------------------------------------------------------- addresses

def test_decode_hand_examples():
    # 0x0301: TH=3, channel 0, left, low-pass -> type 4*1 + 3 = 7
    # 0x00FE: TH=0, channel 63, right, band-pass -> type 0
    # 0x0215: TH=2, channel 5, left, low-pass -> type 6
    dec = decode_cochlea_address([0x0301, 0x00FE, 0x0215])
    np.testing.assert_array_equal(dec.channel, [0, 63, 5])
    np.testing.assert_array_equal(dec.ear, [0, 1, 0])
    np.testing.assert_array_equal(dec.neuron_type, [7, 0, 6])
    assert dec.channel.dtype == np.uint16 and dec.ear.dtype == np.uint8


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 1), st.integers(0, 1), st.integers(0, 3),
                          st.integers(0, 63)), min_size=0, max_size=50))
def test_decode_round_trip(rows):
    ch = np.array([r[0] for r in rows], np.int64)
    ear = np.array([r[1] for r in rows], np.int64)
    lpf = np.array([r[2] for r in rows], np.int64)
    th = np.array([r[3] for r in rows], np.int64)
    junk = np.array([r[4] for r in rows], np.int64)  # bits 10-15 are unconnected on the chip
    addr = np.array([raw_address(*r[:4]) for r in rows], np.int64)
    dec = decode_cochlea_address(addr + junk * 1024)
    np.testing.assert_array_equal(dec.channel, ch)
    np.testing.assert_array_equal(dec.ear, ear)
    np.testing.assert_array_equal(dec.neuron_type, 4 * lpf + th)
    np.testing.assert_array_equal(encode_cochlea_address(dec.channel, dec.ear, dec.neuron_type), addr)


def test_address_errors():
    with pytest.raises(InvalidEventsError, match="negative"):
        decode_cochlea_address([3, -1])
    with pytest.raises(ParameterError, match="integers"):
        decode_cochlea_address([1.5])
    with pytest.raises(ParameterError, match="channel"):
        encode_cochlea_address([64], [0], [0])
    with pytest.raises(ParameterError, match="neuron_type"):
        encode_cochlea_address([1], [0], [8])


def test_events_from_addresses_filters_and_polarity():
    rows = [  # (t, channel, ear, lpf, th)
        (30, 10, 0, 0, 0), (10, 11, 1, 1, 2), (20, 12, 1, 0, 3), (10, 13, 0, 1, 0), (40, 63, 1, 1, 3),
    ]
    t = [r[0] for r in rows]
    addr = [raw_address(*r[1:]) for r in rows]
    ev = audio_events_from_addresses(t, addr)
    assert ev.dtype == AUDIO_DTYPE
    np.testing.assert_array_equal(ev["t"], [10, 10, 20, 30, 40])  # stable sort
    np.testing.assert_array_equal(ev["x"], [11, 13, 12, 10, 63])
    np.testing.assert_array_equal(ev["p"], [1, 0, 1, 0, 1])  # ear
    assert cochlea_sensor_size("ear") == (64, 1, 2)

    right = audio_events_from_addresses(t, addr, ear="right", polarity_from=None)
    np.testing.assert_array_equal(right["x"], [11, 12, 63])
    assert not right["p"].any()
    assert cochlea_sensor_size(None) == (64, 1, 1)

    lpf = audio_events_from_addresses(t, addr, neuron_type=[4, 5, 6, 7], polarity_from="neuron_type")
    np.testing.assert_array_equal(lpf["x"], [11, 13, 63])
    np.testing.assert_array_equal(lpf["p"], [6, 4, 7])
    assert cochlea_sensor_size("neuron_type") == (64, 1, 8)

    both = audio_events_from_addresses(t, addr, ear=0, neuron_type=0)
    np.testing.assert_array_equal(both["x"], [10])

    frames = to_audio_frames(ev, cochlea_sensor_size("ear"), dt_us=10)
    assert frames.shape == (5, 2, 64) and int(frames.sum()) == 5


def test_events_from_addresses_errors():
    with pytest.raises(ParameterError, match="addresses"):
        audio_events_from_addresses([1, 2], [4])
    with pytest.raises(ParameterError, match="timestamps_us"):
        audio_events_from_addresses([0.5], [4])
    with pytest.raises(ParameterError, match="ear"):
        audio_events_from_addresses([1], [4], ear=2)
    with pytest.raises(ParameterError, match="ear"):
        audio_events_from_addresses([1], [4], ear="middle")
    with pytest.raises(ParameterError, match="neuron_type"):
        audio_events_from_addresses([1], [4], neuron_type=9)
    with pytest.raises(ParameterError, match="polarity_from"):
        audio_events_from_addresses([1], [4], polarity_from="type")


# --------------------------------------------------------------------------- the real utterance

@pytest.fixture(scope="module")
def utterance() -> np.ndarray:
    return read_bs1_local(shared_file("ntidigits/slayer_NTIDIGITS_1.bs1"))


def test_real_file_facts(utterance):
    ev = utterance
    assert ev.shape[0] == 898
    assert int(ev["x"].min()) == 0 and int(ev["x"].max()) == 63 and np.unique(ev["x"]).size == 44
    assert set(np.unique(ev["p"]).tolist()) == {1}
    assert int(ev["t"].min()) == 0 and int(ev["t"].max()) == 1_079_040
    assert not (ev["t"] % 256).any() and (np.diff(ev["t"]) >= 0).all()


@pytest.mark.parametrize("dt_us", [1_000, 14_000, 256])
def test_real_file_time_frames(utterance, dt_us):
    size = (64, 1, 2)  # p is 1 throughout: row 0 stays empty
    f = to_audio_frames(utterance, size, dt_us=dt_us)
    assert f.shape == (-(-1_079_041 // dt_us), 2, 64)
    assert int(f.sum()) == 898 and not f[:, 0].any()
    np.testing.assert_array_equal(f, frames_loop(utterance, 64, 2, split_by="time", dt_us=dt_us))
    pooled = to_audio_frames(utterance, size, dt_us=dt_us, n_channels=16, merge_polarity=True, squeeze_polarity=True)
    assert pooled.shape == (f.shape[0], 16)
    np.testing.assert_array_equal(pooled, f.sum(1).reshape(-1, 16, 4).sum(-1))
    np.testing.assert_array_equal(pooled, pool_channels(f.sum(1).astype(np.uint16), 16))
    per_channel = np.bincount(utterance["x"].astype(np.int64), minlength=64)
    np.testing.assert_array_equal(f.sum((0, 1)), per_channel)


def test_real_file_count_frames(utterance):
    f = to_audio_frames(utterance, (64, 1, 2), T=10, split_by="count", n_channels=16)
    assert int(f.sum()) == 898
    # floor(898 / 10) = 89 events per slice, the last slice has 898 - 9 * 89 = 97
    np.testing.assert_array_equal(f.sum((1, 2)), [89] * 9 + [97])
    np.testing.assert_array_equal(
        f, frames_loop(utterance, 64, 2, split_by="count", T=10, factor=4)
    )
