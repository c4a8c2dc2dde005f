"""The arrays behind the pictures (counts per slice, pixel, bin and neuron), checked against
per-event loops; the pictures themselves are only checked to be written."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("matplotlib")

from eventkit import testing
from eventkit.cli.main import cli
from eventkit.errors import InvalidEventsError, ParameterError
from eventkit.events import make_audio_events, make_events
from eventkit.io import read_events
from eventkit.views import (
    audio_raster_data,
    event_grid_data,
    frames_rgb,
    load_sample,
    plot_audio_raster,
    plot_event_grid,
    plot_frame_strip,
    polarity_rgb,
    render_sample,
    save_figure,
    write_frames_gif,
)
from eventkit.views.render import OFF_RGB, ON_RGB
from tests.conftest import shared_file

PNG = b"\x89PNG\r\n\x1a\n"


def grid_reference(ev: np.ndarray, sensor, n: int) -> np.ndarray:
    """Per-event loop: SpikingJelly's time edges (dt = floor((t_last - t_0)/n), last window to the end)."""
    W, H, P = sensor
    out = np.zeros((n, P, H, W), np.int64)
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
    dt = (t1 - t0) // n
    for e in ev:
        j = n - 1 if dt == 0 else min((int(e["t"]) - t0) // dt, n - 1)
        out[j, int(e["p"]), int(e["y"]), int(e["x"])] += 1
    return out


def test_polarity_colours():
    counts = np.zeros((2, 2, 3), np.uint16)
    counts[1, 0, 0] = 4   # ON only
    counts[0, 0, 1] = 4   # OFF only
    counts[1, 1, 2] = 1   # a weak ON pixel
    rgb = polarity_rgb(counts, vmax=4)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[1, 0], 1.0)                 # nothing: white
    np.testing.assert_allclose(rgb[0, 0], ON_RGB, atol=1e-6)    # saturated ON: the ON colour
    np.testing.assert_allclose(rgb[0, 1], OFF_RGB, atol=1e-6)
    np.testing.assert_allclose(rgb[1, 2], 1 - 0.25 * (1 - ON_RGB), atol=1e-6)  # a quarter of the way
    gray = polarity_rgb(counts[1:], vmax=2)
    np.testing.assert_allclose(gray[0, 0], 0.0)
    with pytest.raises(ParameterError, match=r"\[P, H, W\]"):
        polarity_rgb(np.zeros((4, 4)))


def test_event_grid_counts_match_a_per_event_loop():
    rng = np.random.default_rng(0)
    ev = testing.random_vision_events(rng, 700, 20, 14)
    grid = event_grid_data(ev, (20, 14, 2), n_slices=6)
    np.testing.assert_array_equal(grid.counts, grid_reference(ev, (20, 14, 2), 6))
    t = ev["t"]
    for j in range(6):  # every event of slice j lies inside its printed edges
        inside = (t >= grid.t_edges_us[j]) & (t < grid.t_edges_us[j + 1])
        assert grid.counts[j].sum() == inside.sum()
    fig = plot_event_grid(grid, title="random")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [int(s.split("· ")[1].split(" ev")[0]) for s in titles] == grid.counts.sum(axis=(1, 2, 3)).tolist()


def test_event_grid_of_the_real_nmnist_sample(tmp_path):
    ev = read_events(shared_file("nmnist/sample_nmnist.bin"))
    grid = event_grid_data(ev, (34, 34, 2), n_slices=8)
    assert grid.counts.sum() == 4325 and grid.t_edges_us[0] == 654 and grid.t_edges_us[-1] == 311176
    np.testing.assert_array_equal(grid.counts, grid_reference(ev, (34, 34, 2), 8))
    out = save_figure(plot_event_grid(grid), tmp_path / "g.png")
    assert out.read_bytes()[:8] == PNG


def test_frames_rgb_strip_and_gif(tmp_path):
    frames = np.zeros((3, 2, 4, 5), np.uint16)
    frames[1, 1, 2, 3] = 9
    imgs = frames_rgb(frames, scale=2)
    assert imgs.shape == (3, 8, 10, 3) and imgs.dtype == np.uint8
    assert (imgs[0] == 255).all() and (imgs[1, 4:6, 6:8] == np.round(ON_RGB * 255)).all()
    assert [ax.get_title() for ax in plot_frame_strip(frames).axes] == ["t=0 · 0", "t=1 · 9", "t=2 · 0"]
    from PIL import Image

    path = write_frames_gif(frames, tmp_path / "a.gif", min_size=40)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.size == (50, 40)
    with pytest.raises(ParameterError, match=r"\.gif"):
        write_frames_gif(frames, tmp_path / "a.png")
    with pytest.raises(ParameterError, match=r"\[T, P, H, W\]"):
        frames_rgb(np.zeros((2, 3)))


def test_audio_raster_counts_match_a_per_event_loop():
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(1_000, 500_000, 400))
    ev = make_audio_events(t, rng.integers(0, 40, 400), rng.integers(0, 2, 400))
    r = audio_raster_data(ev, (40, 1, 2), n_bins=25)
    span = int(t[-1]) - int(t[0]) + 1
    assert r.dt_us == -(-span // 25) and r.counts.shape == (25, 40) and r.start_us == int(t[0])
    ref = np.zeros((25, 40), np.int64)
    for e in ev:
        ref[(int(e["t"]) - int(t[0])) // r.dt_us, int(e["x"])] += 1
    np.testing.assert_array_equal(r.counts, ref)
    assert r.polarity.tolist() == ev["p"].tolist()
    assert plot_audio_raster(r).axes
    with pytest.raises(InvalidEventsError, match="audio raster: needs audio events"):
        audio_raster_data(make_events([0], [0], [0], [0]), (1, 1, 1))


def test_real_ntidigits_raster():
    ev = read_events(shared_file("ntidigits/slayer_NTIDIGITS_1.bs1"))
    sample = load_sample(str(shared_file("ntidigits/slayer_NTIDIGITS_1.bs1")))
    assert sample.audio and sample.sensor_size == (64, 1, 2)
    r = audio_raster_data(ev, sample.sensor_size, n_bins=100)
    assert r.counts.sum() == 898 and (r.counts.sum(axis=0) > 0).sum() == 44  # 44 distinct channels


def test_load_sample_from_a_dataset_and_its_errors(tmp_path):
    root = testing.make_nmnist_root(tmp_path / "nmnist")
    s = load_sample("nmnist:3", root=root, split="test")
    assert not s.audio and s.sensor_size == (34, 34, 2) and s.title.startswith("nmnist test[3]")
    with pytest.raises(ParameterError, match="index 99 is past the last test sample"):
        load_sample("nmnist:99", root=root, split="test")
    with pytest.raises(ParameterError, match="neither an event file nor a dataset"):
        load_sample("no-such-thing:2")
    assert render_sample(s, kind="strip", T=4, out=tmp_path / "s.png")["counts_per_frame"]


def test_cli_show_writes_the_picture_and_reports_the_counts(tmp_path):
    root = testing.make_nmnist_root(tmp_path / "nmnist")
    runner = CliRunner()
    res = runner.invoke(cli, ["show", "nmnist:1", "--root", str(root), "--T", "5", "--out", str(tmp_path / "g.png"),
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["kind"] == "grid" and len(out["counts_per_slice"]) == 5
    assert sum(out["counts_per_slice"]) == out["n_events"] > 0
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG
    res = runner.invoke(cli, ["show", "nmnist:1", "--root", str(root), "--kind", "gif", "--out",
                              str(tmp_path / "a.gif")])
    assert res.exit_code == 0 and res.output.strip() == str(tmp_path / "a.gif")
    res = runner.invoke(cli, ["show", "nmnist:1", "--root", str(root), "--kind", "raster"])
    assert res.exit_code == 2 and "--kind raster is for audio" in res.output
    res = runner.invoke(cli, ["show", "nmnist:1", "--root", str(root), "--sensor", "3,4"])
    assert res.exit_code == 2 and "W,H,P" in res.output


def test_cli_show_audio_and_network(tmp_path):
    pytest.importorskip("nir")
    from eventkit.io.bs1 import write_bs1
    from eventkit_train.export import save_nir
    from eventkit_train.models import build

    rng = np.random.default_rng(2)
    f = tmp_path / "cochlea.bs1"
    write_bs1(f, make_audio_events(np.sort(rng.integers(0, 200_000, 500)), rng.integers(0, 16, 500), 1))
    runner = CliRunner()
    res = runner.invoke(cli, ["show", str(f), "--T", "20", "--out", str(tmp_path / "r.png"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["kind"] == "raster" and out["sensor_size"] == [16, 1, 2] and sum(out["counts_per_bin"]) == 500
    torch.manual_seed(0)
    net = build("16-24-4", (16,), neuron="lif", tau=2.0)
    for m in net.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.uniform_(m.weight, 0.0, 0.6)
    save_nir(net, tmp_path / "net.nir", (16,))
    res = runner.invoke(cli, ["show", str(f), "--net", str(tmp_path / "net.nir"), "--T", "30", "--out",
                              str(tmp_path / "spikes.png"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [layer["kind"] for layer in out["layers"]] == ["LIF", "LIF"]
    assert out["layers"][0]["spikes"] > 0 and (tmp_path / "spikes.png").read_bytes()[:8] == PNG
    res = runner.invoke(cli, ["show", str(f), "--net", str(tmp_path / "net.nir"), "--kind", "grid"])
    assert res.exit_code == 2
