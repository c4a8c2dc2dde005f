"""Neuron definitions: each module holds one neuron's step and its hand-derived derivatives.

The format is described in :mod:`eventkit_train.kernels.definition`; the recipe for adding
a neuron is ``docs/adding-a-neuron.md``. The step-by-step ``*_step`` functions of
:mod:`eventkit_train.neurons` are written separately and serve as the independent check.
"""
