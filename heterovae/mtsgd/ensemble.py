"""A set of M multi-head networks evaluated as one vectorised model.

Each particle is a :class:`MultiHeadNetwork`: a shared backbone (the
paper's ``alpha``) followed by one linear head per task (``beta_k``). The M
copies are not kept as M modules: their parameters are stacked along a
leading particle axis with :func:`torch.func.stack_module_state` and the
forward pass is :func:`torch.func.vmap` over that axis of
:func:`torch.func.functional_call`, so one call evaluates every particle.

:class:`ParticleEnsemble` also knows which stacked parameters belong to the
backbone and which to each head, and flattens a group into the ``[M, P]``
matrix the kernels and Stein directions work on.
"""

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["MultiHeadNetwork", "ParticleEnsemble", "default_mlp"]

SHARED_PREFIX = "backbone."


def _head_prefix(k):
    return f"heads.{k}."


def default_mlp(n_features, hidden_sizes):
    """The tabular backbone: ``Linear -> ReLU`` for each hidden size."""
    layers = []
    width = n_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers)


class MultiHeadNetwork(nn.Module):
    """A backbone shared by the tasks and one linear head per task.

    Parameters
    ----------
    backbone : nn.Module
        Maps a batch of inputs to features; the features are flattened
        after the batch axis before the heads.
    n_features_out : int
        Width of the flattened backbone output.
    head_sizes : sequence of int
        Output width of each task head (number of classes, or 1 for a
        regression target).
    """

    def __init__(self, backbone, n_features_out, head_sizes):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleList(nn.Linear(n_features_out, int(s)) for s in head_sizes)

    def features(self, x):
        return self.backbone(x).flatten(1)

    def forward(self, x):
        z = self.features(x)
        return (z,) + tuple(head(z) for head in self.heads)


def infer_feature_width(backbone, example):
    """Width of the flattened backbone output, from a dry forward pass.

    Parameters
    ----------
    backbone : nn.Module
    example : Tensor
        A small batch (two rows suffice) of real inputs.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(example)
    except Exception as exc:  # the user's module rejected the data: say so
        raise ValueError(
            f"the backbone module failed on an input batch of shape "
            f"{tuple(example.shape)}: {exc}"
        ) from exc
    finally:
        backbone.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != example.shape[0]:
        raise ValueError(
            "the backbone module must return one tensor with the batch axis first, got "
            f"{type(out).__name__} of shape {getattr(out, 'shape', None)}."
        )
    return int(out[0].numel())


class ParticleEnsemble:
    """M independently initialised copies of a network, stacked for ``vmap``.

    Parameters
    ----------
    networks : list of MultiHeadNetwork
        The M initial particles (same architecture, own initialisation).
    device : torch.device

    Attributes
    ----------
    params : dict of str to Tensor
        Stacked parameters, shape ``[M, *shape]``, leaves requiring grad.
    buffers : dict of str to Tensor
        Stacked buffers.
    shared_names, head_names : list of str, list of list of str
        Keys of ``params`` in the backbone and in each task head.
    """

    def __init__(self, networks, device):
        if not networks:
            raise ValueError("need at least one network")
        self.n_particles = len(networks)
        self.n_tasks = len(networks[0].heads)
        params, buffers = stack_module_state([n.to(device) for n in networks])
        self.params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        self.buffers = buffers
        # A CPU template whose own tensors are never used: functional_call
        # substitutes the stacked ones. A real (not meta) copy keeps pickling
        # simple.
        self.template = copy.deepcopy(networks[0]).cpu()
        self.shared_names = [k for k in self.params if k.startswith(SHARED_PREFIX)]
        self.head_names = [
            [k for k in self.params if k.startswith(_head_prefix(t))] for t in range(self.n_tasks)
        ]
        if not self.shared_names:
            raise ValueError(
                "the backbone has no parameters: there is nothing shared between tasks "
                "(give hidden_sizes at least one layer or a module with parameters)."
            )

    # ------------------------------------------------------------- forward
    def _call_one(self, params, buffers, x):
        return functional_call(self.template, (params, buffers), (x,))

    def forward(self, x, *, train=True):
        """Evaluate every particle on the batch ``x``.

        Returns
        -------
        features : Tensor [M, B, F]
            Flattened backbone output of each particle.
        outputs : list of K Tensors [M, B, C_k]
            Head outputs (logits or regression means).
        """
        self.template.train(train)
        out = vmap(self._call_one, in_dims=(0, 0, None), randomness="different")(
            self.params, self.buffers, x
        )
        return out[0], list(out[1:])

    # ----------------------------------------------------- flat parameter views
    def group_names(self, group):
        """Parameter names of ``"shared"`` or of head ``k`` (an int)."""
        return self.shared_names if group == "shared" else self.head_names[group]

    def tensors(self, group):
        return [self.params[k] for k in self.group_names(group)]

    def flat(self, group):
        """Detached ``[M, P]`` matrix of a parameter group."""
        m = self.n_particles
        return torch.cat([t.detach().reshape(m, -1) for t in self.tensors(group)], dim=1)

    @staticmethod
    def flatten(tensors, m):
        return torch.cat([t.reshape(m, -1) for t in tensors], dim=1)

    def unflatten(self, group, flat):
        """Split an ``[M, P]`` matrix back into tensors shaped like the group."""
        out, start = [], 0
        for t in self.tensors(group):
            size = t[0].numel()
            out.append(flat[:, start : start + size].reshape(t.shape))
            start += size
        return out

    def set_grad(self, group, flat_grad):
        for t, g in zip(self.tensors(group), self.unflatten(group, flat_grad)):
            t.grad = g.detach().clone()

    def all_parameters(self):
        return list(self.params.values())

    def to(self, device):
        self.params = {
            k: v.detach().to(device).requires_grad_(True) for k, v in self.params.items()
        }
        self.buffers = {k: v.to(device) for k, v in self.buffers.items()}
        return self

    def n_parameters(self, group):
        return sum(t[0].numel() for t in self.tensors(group))
