"""IF / LIF / PLIF (``001_…`` eqs. 2–6) as a kernel definition.

Per step (``leaky``: LIF/PLIF with ``k = 1/τ`` or ``sigmoid(a)``; else IF)::

    H_t = V_{t-1} + k·(X_t - (V_{t-1} - V_reset))        (IF: H_t = V_{t-1} + X_t)
    S_t = Θ(H_t - V_th)
    V_t = H_t·(1 - S_t) + V_reset·S_t                    (soft: V_t = H_t - V_th·S_t)

Backward (``g_*`` = ∂L/∂·; ``σ'`` the surrogate derivative)::

    ∂L/∂S_t  = g_S[t] + g_V·∂V_t/∂S_t
               (∂V_t/∂S_t = V_reset - H_t hard, -V_th soft; 0 with detach_reset)
    ∂L/∂H_t  = g_H[t] + g_V·∂V_t/∂H_t + ∂L/∂S_t·σ'(H_t - V_th)    (∂V_t/∂H_t = 1 - S_t hard, 1 soft)
    ∂L/∂X_t  = k·∂L/∂H_t,   ∂L/∂V_{t-1} = (1 - k)·∂L/∂H_t        (IF: both ∂L/∂H_t)
    ∂L/∂k   += ∂L/∂H_t·(X_t - (V_{t-1} - V_reset)) = ∂L/∂H_t·(H_t - V_{t-1})/k

Saved per step: ``H_t`` only (``S_t`` is recomputed by the same comparison, ``V_{t-1}`` by
the reset of ``H_{t-1}``; the input term of ∂L/∂k is recovered as ``(H_t - V_{t-1})/k``).
"""
from eventkit_train.kernels.ops import detach, heaviside, zeros_like
from eventkit_train.kernels.surrogates import surrogate_grad

NAME = "lif"
STATE = ("v",)
SAVED = ("h",)
RESTORED = ("v",)
PARAMS = ("k", "v_threshold", "v_reset")
LEARNABLE = ("k",)
FLAGS = ("leaky", "soft", "detach_reset")


def reset(h, s, v_threshold, v_reset, soft):
    if soft:
        v = h - v_threshold * s
    else:
        v = h * (1.0 - s) + v_reset * s
    return v


def step(x, v, k, v_threshold, v_reset, leaky, soft, detach_reset):
    if leaky:
        h = v + k * (x - (v - v_reset))
    else:
        h = v + x
    s = heaviside(h - v_threshold)
    if detach_reset:
        s_reset = detach(s)
    else:
        s_reset = s
    return s, h, reset(h, s_reset, v_threshold, v_reset, soft)


def restore(h, k, v_threshold, v_reset, leaky, soft, detach_reset):
    return reset(h, heaviside(h - v_threshold), v_threshold, v_reset, soft)


def step_vjp(g_spike, g_membrane, g_v, h, v_prev, k, v_threshold, v_reset, leaky, soft, detach_reset,
             param_grads, surrogate_kind, surrogate_a, surrogate_b):
    s = heaviside(h - v_threshold)
    if soft:
        g_h = g_membrane + g_v
        g_s_reset = -v_threshold * g_v
    else:
        g_h = g_membrane + g_v * (1.0 - s)
        g_s_reset = (v_reset - h) * g_v
    g_s = g_spike
    if not detach_reset:
        g_s = g_s + g_s_reset
    g_h = g_h + g_s * surrogate_grad(h - v_threshold, surrogate_kind, surrogate_a, surrogate_b)
    if leaky:
        g_x = g_h * k
        g_v_prev = g_h * (1.0 - k)
        if param_grads:
            g_k = g_h * ((h - v_prev) / k)
        else:
            g_k = zeros_like(g_h)
    else:
        g_x = g_h
        g_v_prev = g_h
        g_k = zeros_like(g_h)
    return g_x, g_v_prev, g_k
