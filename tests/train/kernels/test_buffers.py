"""The recycled CPU output buffers of the Numba kernels: a buffer goes out again only when nothing uses it."""
from __future__ import annotations

import gc

import pytest
import torch

from eventkit_train.kernels import buffers
from eventkit_train.neurons import LIF

BIG = (4, buffers.MIN_BYTES // 4)  # float32: four times the smallest pooled size


@pytest.fixture(autouse=True)
def _empty_pool(monkeypatch):
    monkeypatch.setenv(buffers.POOL_ENV, "64")
    buffers.release()
    yield
    gc.collect()
    buffers.release()


def test_a_buffer_in_use_is_not_handed_out_again():
    a = buffers.empty(BIG, torch.float32)
    ptr = a.data_ptr()
    row = a[1]  # a view keeps the buffer
    del a
    assert buffers.empty(BIG, torch.float32).data_ptr() != ptr
    storage = row.untyped_storage()  # so does a storage
    del row
    assert buffers.empty(BIG, torch.float32).data_ptr() != ptr
    del storage
    again = buffers.empty((BIG[0] * BIG[1],), torch.float32)  # same bytes, another shape
    assert again.data_ptr() == ptr and again.shape == (BIG[0] * BIG[1],) and again.is_contiguous()


def test_sizes_dtypes_and_the_limit(monkeypatch):
    small = buffers.empty((10, 10), torch.float32)
    assert small.shape == (10, 10) and buffers.pool_bytes() == 0  # below MIN_BYTES: plain torch.empty
    a = buffers.empty(BIG, torch.float32)
    b = buffers.empty(BIG, torch.float64)  # twice the bytes: another buffer
    assert a.dtype == torch.float32 and b.dtype == torch.float64 and buffers.pool_bytes() == a.nbytes + b.nbytes
    monkeypatch.setenv(buffers.POOL_ENV, str((a.nbytes + b.nbytes) / 2**20))  # full: new buffers are not kept
    c = buffers.empty(BIG, torch.float32)
    assert c.data_ptr() not in (a.data_ptr(), b.data_ptr()) and buffers.pool_bytes() == a.nbytes + b.nbytes
    del b
    d = buffers.empty(BIG, torch.float32)  # room is made by dropping the free float64 buffer
    assert buffers.pool_bytes() == a.nbytes + d.nbytes
    monkeypatch.setenv(buffers.POOL_ENV, "0")
    del a, c, d
    buffers.release()
    assert buffers.empty(BIG, torch.float32) is not None and buffers.pool_bytes() == 0


def test_neuron_outputs_kept_by_the_caller_stay_intact():
    """A second call must not write into the spikes, membrane or gradient a caller still holds."""
    m = LIF(tau=2.0, return_membrane=True)
    shape = (4, 2, buffers.MIN_BYTES // 4)
    x1 = (torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 2.5).requires_grad_()
    s1, v1 = m(x1)
    s1.sum().backward()
    kept = [s1.clone(), v1.clone(), x1.grad.clone()]
    for seed in (2, 3):  # the freed buffers of the second call are recycled by the third
        x = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2.5).requires_grad_()
        s, v = m(x)
        (s * 3.0).sum().backward()
        del s, v, x
    for held, copy in zip([s1, v1, x1.grad], kept, strict=True):
        assert torch.equal(held, copy)
    assert buffers.pool_bytes() > 0


def _storages(*ts: torch.Tensor) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in ts}


def test_outputs_of_forwards_awaiting_backward_stay_distinct_and_intact():
    """Two networks of two neurons run forward, a third forward runs, then both backwards: nothing any of them
    returned or saved for backward is written by another call."""
    shape = (4, 2, buffers.MIN_BYTES // 4)
    net = torch.nn.Sequential(LIF(tau=2.0), LIF(tau=3.0, v_threshold=0.5))
    xs = [(torch.rand(shape, generator=torch.Generator().manual_seed(s)) * 2.5).requires_grad_() for s in (1, 2, 3)]
    out1, out2 = net(xs[0]), net(xs[1])
    first = [out1.clone(), out2.clone()]
    assert len(_storages(out1, out2)) == 2 and out1.sum() > 0
    out3 = net(xs[2])
    assert len(_storages(out1, out2, out3)) == 3
    assert torch.equal(out1, first[0]) and torch.equal(out2, first[1])
    ref_grads = []
    for x in xs[:2]:  # the same gradients from fresh, one-at-a-time calls
        xr = x.detach().clone().requires_grad_()
        net(xr).sum().backward()
        ref_grads.append(xr.grad.clone())
    out2.sum().backward()
    out1.sum().backward()  # its saved membranes survived out2's backward and out3's forward
    assert torch.equal(out1, first[0]) and torch.equal(out2, first[1])
    assert torch.equal(xs[0].grad, ref_grads[0]) and torch.equal(xs[1].grad, ref_grads[1])
    assert len(_storages(xs[0].grad, xs[1].grad, out1, out2, out3)) == 5


def test_concurrent_calls_from_threads_get_their_own_buffers():
    from concurrent.futures import ThreadPoolExecutor

    shape = (4, 2, buffers.MIN_BYTES // 4)
    xs = [torch.rand(shape, generator=torch.Generator().manual_seed(s)) * 2.5 for s in range(6)]
    serial = [LIF(tau=2.0)(x) for x in xs]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda x: LIF(tau=2.0)(x), xs))
    assert len(_storages(*outs)) == len(outs)
    for a, b in zip(outs, serial, strict=True):
        assert torch.equal(a, b)
