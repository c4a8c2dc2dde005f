"""NIR (Neuromorphic Intermediate Representation) export and import of eventkit networks.

``to_nir(model, input_shape, dt=1e-4)`` -> ``nir.NIRGraph``; ``from_nir(graph)`` -> a
:class:`~eventkit_train.models.SpikingNet`. Write and read the ``.nir`` file with
``nir.write(path, graph)`` / ``nir.read(path)`` (or :func:`save_nir` / :func:`load_nir`).

eventkit's neurons are discrete-time (one update per time step); NIR's are continuous.
Every mapping is the forward-Euler step of NIR's equation with step ``dt`` seconds (the
convention of snnTorch, SpikingJelly and norse's NIR bridges; ``dt = 1e-4`` s is their
default), e.g. LIF ``τ_NIR = τ_steps · dt``, ``r = 1``, ``v_leak = v_reset``. The table is
in ``docs/nir.md``. Needs the optional ``nir`` package (``pip install 'eventkit-snn[nir]'``).
"""
from eventkit_train.export.from_nir import from_nir, load_nir
from eventkit_train.export.to_nir import DEFAULT_DT, save_nir, to_nir

__all__ = ["to_nir", "from_nir", "save_nir", "load_nir", "DEFAULT_DT"]
