"""PyTorch and JAX (`--peers`): which are installed, and their runners of the same losses,
built from their ops."""
import importlib.util
import math
from types import SimpleNamespace

from .runners import Runner

PEERS = ("torch", "jax")


def available_peers(requested):
    """(peers to run, notes on the ones skipped)."""
    peers, skipped = [], {}
    for peer in requested:
        if importlib.util.find_spec(peer) is None:
            skipped[peer] = f"not installed (pip install {peer})"
        else:
            peers.append(peer)
    return peers, skipped


def n_rows(z):
    return math.prod(z.shape[:-1])


def torch_runner(case, threads):
    import torch

    torch.set_num_threads(threads)
    F = torch.nn.functional
    xp = SimpleNamespace(
        exp=torch.exp, log=torch.log, sigmoid=torch.sigmoid, relu=torch.relu,
        sum=torch.sum, mean=torch.mean,
        softmax_cross_entropy=lambda z, t: -(t * F.log_softmax(z, dim=-1)).sum() / n_rows(z),
        conv2d=lambda x, w, padding: F.conv2d(x, w, padding=padding),
        max_pool2d=F.max_pool2d, reshape=torch.reshape)

    def tensors(arrays):
        return {n: torch.tensor(v, requires_grad=case.grad and n in case.params)
                for n, v in arrays.items()}

    def run(t):
        if not case.grad:
            with torch.no_grad():
                return [case.loss(xp, **t)]
        loss = case.loss(xp, **t)
        return [loss, *torch.autograd.grad(loss.sum(), [t[n] for n in case.params])]

    return Runner(run, [tensors({**case.params, **d}) for d in case.data],
                  lambda out: out.detach().numpy())


def jax_runner(case, threads):
    import jax

    jax.config.update("jax_enable_x64", True)  # before any array is made: float64
    import jax.numpy as jnp

    def max_pool2d(x, k):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, k, k), (1, 1, k, k),
                                     "VALID")

    xp = SimpleNamespace(
        exp=jnp.exp, log=jnp.log, sigmoid=jax.nn.sigmoid, relu=jax.nn.relu,
        sum=jnp.sum, mean=jnp.mean,
        softmax_cross_entropy=lambda z, t: -jnp.sum(t * jax.nn.log_softmax(z)) / n_rows(z),
        conv2d=lambda x, w, padding: jax.lax.conv(x, w, (1, 1), [(padding, padding)] * 2),
        max_pool2d=max_pool2d, reshape=jnp.reshape)
    names = list(case.params)

    def loss(params, data):
        return case.loss(xp, **dict(zip(names, params)), **data)

    def summed(params, data):  # grad needs a scalar; W1's loss has shape (1,)
        value = loss(params, data)
        return jnp.sum(value), value

    def step(params, data):
        if not case.grad:
            return [loss(params, data)]
        (_, value), grads = jax.value_and_grad(summed, has_aux=True)(params, data)
        return [value, *grads]

    step = jax.jit(step)
    params = tuple(jnp.asarray(v) for v in case.params.values())
    inputs = [(params, {n: jnp.asarray(v) for n, v in d.items()}) for d in case.data]
    return Runner(lambda inp: jax.block_until_ready(step(*inp)), inputs)
