"""CUBA-LIF (``002_…`` eqs. 3–6) as a kernel definition; also the leaky readout (ϑ = +∞).

Per step (``X_t`` includes the recurrent term ``V·S_{t-1}`` when there is one)::

    I_t = α·I_{t-1} + X_t
    P_t = β·U_{t-1} + I_t
    U_t = P_t·(1 - S_{t-1}) + V_reset·S_{t-1}         (soft: U_t = P_t - ϑ·S_{t-1})
    S_t = Θ(U_t - ϑ)

Backward (``g_*`` = ∂L/∂·)::

    ∂L/∂S_t     = g_S[t] + g_S (from step t+1's reset and recurrence)
    ∂L/∂U_t     = g_U[t] + g_U + ∂L/∂S_t·σ'(U_t - ϑ)
    ∂L/∂P_t     = ∂L/∂U_t·(1 - S_{t-1})              (soft: ∂L/∂U_t)
    ∂L/∂S_{t-1} = ∂L/∂U_t·(V_reset - P_t)            (soft: -ϑ·∂L/∂U_t; 0 with detach_reset)
    ∂L/∂I_t     = g_I + ∂L/∂P_t;   ∂L/∂X_t = ∂L/∂I_t
    ∂L/∂I_{t-1} = α·∂L/∂I_t;      ∂L/∂U_{t-1} = β·∂L/∂P_t
    ∂L/∂α      += ∂L/∂I_t·I_{t-1};  ∂L/∂β += ∂L/∂P_t·U_{t-1}

Saved per step: ``U_t`` and ``I_t`` (``S_t`` is recomputed from ``U_t``; ``P_t`` from
``U_{t-1}`` and ``I_t``).
"""
from eventkit_train.kernels.ops import detach, heaviside, zeros_like
from eventkit_train.kernels.surrogates import surrogate_grad

NAME = "cubalif"
STATE = ("i", "u", "s")
SAVED = ("u", "i")
RESTORED = ("i", "u", "s")
PARAMS = ("alpha", "beta", "v_threshold", "v_reset")
LEARNABLE = ("alpha", "beta")
FLAGS = ("soft", "detach_reset")


def step(x, i, u, s, alpha, beta, v_threshold, v_reset, soft, detach_reset):
    i_new = alpha * i + x
    pre = beta * u + i_new
    if detach_reset:
        s_reset = detach(s)
    else:
        s_reset = s
    if soft:
        u_new = pre - v_threshold * s_reset
    else:
        u_new = pre * (1.0 - s_reset) + v_reset * s_reset
    s_new = heaviside(u_new - v_threshold)
    return s_new, u_new, i_new, i_new, u_new, s_new


def restore(u, i, alpha, beta, v_threshold, v_reset, soft, detach_reset):
    return i, u, heaviside(u - v_threshold)


def step_vjp(g_spike, g_membrane, g_i, g_u, g_s, u, i, i_prev, u_prev, s_prev, alpha, beta, v_threshold, v_reset,
             soft, detach_reset, param_grads, surrogate_kind, surrogate_a, surrogate_b):
    g_spike_total = g_spike + g_s
    g_u_total = g_membrane + g_u + g_spike_total * surrogate_grad(u - v_threshold, surrogate_kind, surrogate_a,
                                                                  surrogate_b)
    if soft:
        g_pre = g_u_total
        g_s_prev = -v_threshold * g_u_total
    else:
        g_pre = g_u_total * (1.0 - s_prev)
        g_s_prev = (v_reset - (beta * u_prev + i)) * g_u_total
    if detach_reset:
        g_s_prev = zeros_like(g_u_total)
    g_i_total = g_i + g_pre
    if param_grads:
        g_alpha = g_i_total * i_prev
        g_beta = g_pre * u_prev
    else:
        g_alpha = zeros_like(g_i_total)
        g_beta = zeros_like(g_i_total)
    return g_i_total, alpha * g_i_total, beta * g_pre, g_s_prev, g_alpha, g_beta
