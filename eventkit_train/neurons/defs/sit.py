"""SIT / SIT-Bursting (``000_…`` Eq. 18, Table 2) as a kernel definition.

Parameters are passed pre-divided by τ: ``kt = k/τ``, ``at = a/τ``, ``inv_tau = 1/τ``. Per step::

    Y_t = U_{t-1} + kt·(U_{t-1} - U_r)(U_{t-1} - U_c) - V_{t-1}·inv_tau + I_t·inv_tau
    H_t = V_{t-1} + at·(b(Y_t - U_r) - V_{t-1})
    S_t = Θ(Y_t - U_th)
    U_t = Y_t(1 - S_t) + c·S_t        (soft: U_t = Y_t - U_th·S_t)
    V_t = H_t + d·S_t

Backward (the reset stays in the graph for both state variables unless ``detach_reset``)::

    ∂L/∂S_t     = g_S[t] + g_U·(c - Y_t) + g_V·d       (soft: g_U·(-U_th); only g_S[t] with detach_reset)
    ∂L/∂Y_t     = g_Y[t] + g_U·(1 - S_t) + g_V·at·b + ∂L/∂S_t·σ'(Y_t - U_th)
                  (soft: g_U instead of g_U(1 - S_t))
    ∂L/∂I_t     = inv_tau·∂L/∂Y_t
    ∂L/∂U_{t-1} = ∂L/∂Y_t·(1 + kt·((U_{t-1} - U_r) + (U_{t-1} - U_c)))
    ∂L/∂V_{t-1} = g_V·(1 - at) - inv_tau·∂L/∂Y_t

Saved per step: ``Y_t`` only (``S_t`` and ``U_{t-1}`` are recomputed from it; the
derivatives never need ``V``).
"""
from eventkit_train.kernels.ops import detach, heaviside
from eventkit_train.kernels.surrogates import surrogate_grad

NAME = "sit"
STATE = ("u", "v")
SAVED = ("y",)
RESTORED = ("u",)
PARAMS = ("kt", "at", "b", "c", "d", "u_r", "u_c", "u_th", "inv_tau")
LEARNABLE = ()
FLAGS = ("soft", "detach_reset")


def reset_u(y, s, c, u_th, soft):
    if soft:
        u = y - u_th * s
    else:
        u = y * (1.0 - s) + c * s
    return u


def step(x, u, v, kt, at, b, c, d, u_r, u_c, u_th, inv_tau, soft, detach_reset):
    y = u + kt * (u - u_r) * (u - u_c) - v * inv_tau + x * inv_tau
    h = v + at * (b * (y - u_r) - v)
    s = heaviside(y - u_th)
    if detach_reset:
        s_reset = detach(s)
    else:
        s_reset = s
    return s, y, reset_u(y, s_reset, c, u_th, soft), h + d * s_reset


def restore(y, kt, at, b, c, d, u_r, u_c, u_th, inv_tau, soft, detach_reset):
    return reset_u(y, heaviside(y - u_th), c, u_th, soft)


def step_vjp(g_spike, g_membrane, g_u, g_v, y, u_prev, kt, at, b, c, d, u_r, u_c, u_th, inv_tau, soft, detach_reset,
             param_grads, surrogate_kind, surrogate_a, surrogate_b):
    s = heaviside(y - u_th)
    if soft:
        g_y = g_membrane + g_u
        g_s_reset = -u_th * g_u
    else:
        g_y = g_membrane + g_u * (1.0 - s)
        g_s_reset = (c - y) * g_u
    g_s = g_spike
    if not detach_reset:
        g_s = g_s + g_s_reset + d * g_v
    g_y = g_y + g_v * (at * b) + g_s * surrogate_grad(y - u_th, surrogate_kind, surrogate_a, surrogate_b)
    g_u_prev = g_y * (1.0 + kt * ((u_prev - u_r) + (u_prev - u_c)))
    g_v_prev = g_v * (1.0 - at) - g_y * inv_tau
    return g_y * inv_tau, g_u_prev, g_v_prev
