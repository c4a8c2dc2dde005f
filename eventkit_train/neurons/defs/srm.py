"""SRM / SLAYER (``004_…`` Sect. II-A) as a kernel definition: the recursive ε and ν filters.

Per step (``p, q`` filter the input, ``pr, qr`` the output spikes)::

    q_n  = a_s·(q_{n-1} + p_{n-1});   qr_n = a_r·(qr_{n-1} + pr_{n-1})
    u_n  = c_s·q_n + c_r·qr_n;        s_n = Θ(u_n - ϑ)
    p_n  = a_s·p_{n-1} + x_n;         pr_n = a_r·pr_{n-1} + s_n

Backward (``g_*`` = ∂L/∂·; the filters are linear, only ``u_n`` is needed)::

    ∂L/∂s_n  = g_s[n] + g_pr          (g_s[n] alone with detach_reset)
    ∂L/∂u_n  = g_u[n] + ∂L/∂s_n·σ'(u_n - ϑ)
    ∂L/∂q_n  = g_q + c_s·∂L/∂u_n;     ∂L/∂qr_n = g_qr + c_r·∂L/∂u_n
    ∂L/∂x_n  = g_p
    ∂L/∂p_{n-1} = a_s·(g_p + ∂L/∂q_n);    ∂L/∂q_{n-1} = a_s·∂L/∂q_n
    ∂L/∂pr_{n-1} = a_r·(g_pr + ∂L/∂qr_n); ∂L/∂qr_{n-1} = a_r·∂L/∂qr_n

Saved per step: ``u_n`` only.
"""
from eventkit_train.kernels.ops import detach, heaviside
from eventkit_train.kernels.surrogates import surrogate_grad

NAME = "srm"
STATE = ("p", "q", "pr", "qr")
SAVED = ("u",)
RESTORED = ()
PARAMS = ("a_s", "c_s", "a_r", "c_r", "theta")
LEARNABLE = ()
FLAGS = ("detach_reset",)


def step(x, p, q, pr, qr, a_s, c_s, a_r, c_r, theta, detach_reset):
    q_new = a_s * (q + p)
    qr_new = a_r * (qr + pr)
    u = c_s * q_new + c_r * qr_new
    s = heaviside(u - theta)
    if detach_reset:
        s_reset = detach(s)
    else:
        s_reset = s
    return s, u, a_s * p + x, q_new, a_r * pr + s_reset, qr_new


def step_vjp(g_spike, g_membrane, g_p, g_q, g_pr, g_qr, u, a_s, c_s, a_r, c_r, theta, detach_reset, param_grads,
             surrogate_kind, surrogate_a, surrogate_b):
    g_s = g_spike
    if not detach_reset:
        g_s = g_s + g_pr
    g_u = g_membrane + g_s * surrogate_grad(u - theta, surrogate_kind, surrogate_a, surrogate_b)
    g_q_new = g_q + c_s * g_u
    g_qr_new = g_qr + c_r * g_u
    return g_p, a_s * (g_p + g_q_new), a_s * g_q_new, a_r * (g_pr + g_qr_new), a_r * g_qr_new
