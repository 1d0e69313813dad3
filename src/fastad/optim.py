"""Optimizers and learning-rate schedules for `fastad.Trainer`.

An optimizer is an update rule over graph nodes, so a training step is one program the
native VM runs (and `disassemble` shows), and an update can be differentiated like any
node.  For each parameter p with gradient g it gets its state (a dict of nodes, one per
state buffer: momenta and the like, made by `state`), the optimizer's shared state
(`shared`: scalars such as beta ** t, advanced once per step by `advance`) and the
learning rate lr (a float, or a 0-d node when a schedule varies it), and returns the new
p and the new state.  The Trainer owns every buffer and writes the new values in place.

Write your own by subclassing `Optimizer`:

    class SignSGD(Optimizer):
        def update(self, p, g, state, shared, lr):
            return p - ad.sign_op(g) * lr, {}

The rules are PyTorch's (torch.optim), each written as the docstring shows it.
"""
import math

import numpy as np

from .ops import sqrt_op


# --- learning-rate schedules ------------------------------------------------------------

class Schedule:
    """A learning rate that depends on the step number t (1 at the first step).
    `values(first, count)` gives the rates of steps first .. first + count - 1."""

    def __call__(self, t):
        raise NotImplementedError

    def values(self, first, count):
        return np.array([self(t) for t in range(first, first + count)], dtype=np.float64)


class Constant(Schedule):
    def __init__(self, lr):
        self.lr = float(lr)

    def __call__(self, t):
        return self.lr


class StepLR(Schedule):
    """lr * gamma ** ((t - 1) // step_size): multiplied by gamma every step_size steps."""

    def __init__(self, lr, step_size, gamma=0.1):
        if int(step_size) < 1:
            raise ValueError(f"StepLR: step_size must be at least 1, not {step_size}")
        self.lr, self.step_size, self.gamma = float(lr), int(step_size), float(gamma)

    def __call__(self, t):
        return self.lr * self.gamma ** ((t - 1) // self.step_size)


class CosineLR(Schedule):
    """Cosine annealing from lr to lr_min over total_steps steps (then lr_min)."""

    def __init__(self, lr, total_steps, lr_min=0.0):
        if int(total_steps) < 1:
            raise ValueError(f"CosineLR: total_steps must be at least 1, not {total_steps}")
        self.lr, self.total, self.lr_min = float(lr), int(total_steps), float(lr_min)

    def __call__(self, t):
        frac = min(t - 1, self.total) / self.total
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * frac))


class Lambda(Schedule):
    """A user function of the step number; precomputed for the steps a fit runs."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, t):
        return float(self.fn(t))


def schedule(lr):
    """A Schedule from a float, a Schedule or a function of the step number."""
    if isinstance(lr, Schedule):
        return lr
    if callable(lr):
        return Lambda(lr)
    return Constant(lr)


# --- optimizers ---------------------------------------------------------------------------

class Optimizer:
    def __init__(self, lr):
        self.schedule = schedule(lr)

    def state(self, value):
        """The initial state buffers of a parameter with this initial value: {name: array}."""
        return {}

    def shared(self):
        """The optimizer's shared scalars and their initial values: {name: float}."""
        return {}

    def advance(self, shared):
        """The shared scalars' nodes for this step, from the previous step's."""
        return {}

    def update(self, p, g, state, shared, lr):
        """(new p, {name: new state}) for parameter p and gradient g."""
        raise NotImplementedError(f"{type(self).__name__}.update")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Nesterov's too) and L2
    weight decay: g += wd * p; buf = momentum * buf + g; p -= lr * (buf, or g +
    momentum * buf with nesterov)."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        if nesterov and not momentum:
            raise ValueError("SGD: nesterov needs a momentum")
        self.momentum, self.nesterov, self.weight_decay = float(momentum), nesterov, float(weight_decay)

    def state(self, value):
        return {"momentum": np.zeros_like(value)} if self.momentum else {}

    def update(self, p, g, state, shared, lr):
        if self.weight_decay:
            g = g + p * self.weight_decay
        if not self.momentum:
            return p - g * lr, {}
        buf = state["momentum"] * self.momentum + g
        step = g + buf * self.momentum if self.nesterov else buf
        return p - step * lr, {"momentum": buf}


class Adam(Optimizer):
    """Adam (AdamW with decoupled=True): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).  weight_decay adds wd * p to
    g (Adam) or first shrinks p by lr * wd * p (AdamW)."""

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled=False):
        super().__init__(lr)
        self.b1, self.b2 = (float(b) for b in betas)
        self.eps, self.weight_decay, self.decoupled = float(eps), float(weight_decay), decoupled

    def state(self, value):
        return {"m": np.zeros_like(value), "v": np.zeros_like(value)}

    def shared(self):
        return {"b1t": 1.0, "b2t": 1.0}  # beta1 ** t and beta2 ** t

    def advance(self, shared):
        return {"b1t": shared["b1t"] * self.b1, "b2t": shared["b2t"] * self.b2}

    def update(self, p, g, state, shared, lr):
        if self.weight_decay and self.decoupled:
            p = p - p * lr * self.weight_decay
        elif self.weight_decay:
            g = g + p * self.weight_decay
        m = state["m"] * self.b1 + g * (1 - self.b1)
        v = state["v"] * self.b2 + g * g * (1 - self.b2)
        m_hat = m / (1 - shared["b1t"])
        v_hat = v / (1 - shared["b2t"])
        return p - m_hat * lr / (sqrt_op(v_hat) + self.eps), {"m": m, "v": v}


class RMSProp(Optimizer):
    """RMSProp: v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps), or with
    momentum: buf = momentum buf + g / (sqrt(v) + eps); p -= lr buf."""

    def __init__(self, lr, alpha=0.99, eps=1e-8, momentum=0.0):
        super().__init__(lr)
        self.alpha, self.eps, self.momentum = float(alpha), float(eps), float(momentum)

    def state(self, value):
        state = {"v": np.zeros_like(value)}
        if self.momentum:
            state["momentum"] = np.zeros_like(value)
        return state

    def update(self, p, g, state, shared, lr):
        v = state["v"] * self.alpha + g * g * (1 - self.alpha)
        step = g / (sqrt_op(v) + self.eps)
        if not self.momentum:
            return p - step * lr, {"v": v}
        buf = state["momentum"] * self.momentum + step
        return p - buf * lr, {"v": v, "momentum": buf}
