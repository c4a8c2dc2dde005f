"""AEDAT 4.0 reader (aedat Rust decoder) on the real DVXplorer sample."""
from __future__ import annotations

import numpy as np
import pytest

from eventkit.errors import EventFileError
from eventkit.events import VISION_DTYPE
from eventkit.io import read_aedat4
from tests.conftest import shared_file

SAMPLE = "aedat/tonic_sample.aedat4"


def test_sample_manifest_facts():
    ev = read_aedat4(shared_file(SAMPLE))
    assert ev.dtype == VISION_DTYPE
    assert ev.shape[0] == 111954
    assert (ev["x"].min(), ev["x"].max(), ev["y"].min(), ev["y"].max()) == (0, 319, 0, 239)
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    assert 1.5e15 < ev["t"][0] < 1.7e15  # absolute epoch µs, kept as in the file
    assert round((int(ev["t"][-1]) - int(ev["t"][0])) / 1e6, 2) == 0.59
    assert np.all(np.diff(ev["t"]) >= 0)


def test_sample_matches_tonic_and_imu_count():
    path = shared_file(SAMPLE)
    tonic_io = pytest.importorskip("tonic.io")
    ref = tonic_io.read_aedat4(str(path))
    ev = read_aedat4(path)
    np.testing.assert_array_equal(ev["t"], ref["t"])
    np.testing.assert_array_equal(ev["x"], ref["x"])
    np.testing.assert_array_equal(ev["y"], ref["y"])
    np.testing.assert_array_equal(ev["p"], ref["on"].astype(np.uint8))
    import aedat

    assert sum(len(p["imus"]) for p in aedat.Decoder(str(path)) if "imus" in p) == 475


def test_truncated_file_reports_the_packet(tmp_path):
    data = shared_file(SAMPLE).read_bytes()
    f = tmp_path / "cut.aedat4"
    f.write_bytes(data[:500_000])
    with pytest.raises(EventFileError, match="cut.aedat4.*truncated") as exc:
        read_aedat4(f)
    assert exc.value.offset is not None and exc.value.offset < 500_000


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty"),
        (b"\x01\x02" * 500, "not an AEDAT 4 file"),
        (b"#!AER-DAT2.0\r\n# x\r\n", "not an AEDAT 4 file"),
        (b"#!AER-DAT4.0\r\n" + b"\xff" * 50, "corrupt or truncated"),
    ],
)
def test_bad_input(tmp_path, content, match):
    f = tmp_path / "bad.aedat4"
    f.write_bytes(content)
    with pytest.raises(EventFileError, match=match):
        read_aedat4(f)


def test_unknown_stream_id():
    with pytest.raises(EventFileError, match="not an event stream"):
        read_aedat4(shared_file(SAMPLE), stream_id=2)
