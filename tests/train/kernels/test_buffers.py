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
    b = buffers.empty(BIG, torch.float64)  # another dtype: another buffer
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
    for held, copy in zip([s1, v1, x1.grad], kept):
        assert torch.equal(held, copy)
    assert buffers.pool_bytes() > 0
