"""The skorch side of training: a NeuralNet for unsupervised VAE objectives.

Users get skorch's callbacks (progress bar, early stopping, checkpoints, LR
schedulers), its history and its device handling; the net only changes what
a loss is (the module returns it) and how batches are drawn (slices of
tensors that already sit on the device, rather than per-row ``__getitem__``
and collation, which would cost more than the model's step on tabular data).
"""

from __future__ import annotations

from typing import Optional

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback


def n_batches(n_rows: int, batch_size: int) -> int:
    """Batches in an epoch of :class:`TensorBatches` over ``n_rows`` rows (a last batch of one row is merged).

    Parameters
    ----------
    n_rows : int
        Rows in the epoch.
    batch_size : int
        Rows per batch.

    Returns
    -------
    int
        ``ceil(n_rows / batch_size)``, one less when the last batch would
        hold a single row (at least 1).
    """
    if n_rows % batch_size == 1:
        return max(1, n_rows // batch_size)
    return -(-n_rows // batch_size)


def epochs_for_steps(steps: int, n_rows: int, batch_size: int) -> int:
    """The fewest whole epochs (at least one) that make at least ``steps`` batches of ``batch_size`` from ``n_rows`` rows.

    Parameters
    ----------
    steps : int
        Training steps (batches) wanted.
    n_rows : int
        Training rows per epoch.
    batch_size : int
        Rows per batch.

    Returns
    -------
    int
        ``ceil(steps / n_batches(n_rows, batch_size))``, at least 1.
    """
    return max(1, -(-steps // n_batches(n_rows, batch_size)))


class TensorBatches:
    """Minibatches drawn as slices of a dict of equally long tensors.

    Takes the place of ``torch.utils.data.DataLoader`` as skorch's
    ``iterator_train``/``iterator_valid``. A final batch of one row is merged
    into the previous one, because BatchNorm cannot train on a single row.
    """

    def __init__(self, dataset, batch_size: int = 128, shuffle: bool = False,
                 generator: Optional[torch.Generator] = None, **_):
        self.data = dataset.X
        self.n = len(next(iter(self.data.values())))
        self.batch_size = self.n if batch_size in (None, -1) else int(batch_size)
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        return n_batches(self.n, self.batch_size)

    def __iter__(self):
        device = next(iter(self.data.values())).device
        order = torch.randperm(self.n, generator=self.generator).to(device) if self.shuffle else None
        starts = list(range(0, self.n, self.batch_size))
        if len(starts) > 1 and self.n - starts[-1] == 1:
            starts.pop()
        for i, start in enumerate(starts):
            stop = starts[i + 1] if i + 1 < len(starts) else self.n
            if order is None:
                yield {k: v[start:stop] for k, v in self.data.items()}, None
            else:
                idx = order[start:stop]
                yield {k: v[idx] for k, v in self.data.items()}, None


class _TensorDataset:
    """The minimal dataset skorch needs: ``X`` (a dict of tensors) and a length."""

    def __init__(self, X, y=None):
        self.X = X
        self.y = y

    def __len__(self):
        return len(next(iter(self.X.values())))


class ColumnLossHistory(Callback):
    """Records each column's term of the training loss per epoch.

    The module's ``column_nll``: a column's negative log-likelihood per row
    as the objective weighs it (for the VAE, cells the encoder saw count
    ``visible_weight`` times, and beta-NLL weights apply), so it is the
    plain NLL only under the plain ELBO's weights.

    The per-column losses of every batch (the ``column_nll`` entry of the
    module's output) are accumulated on the device, weighted by the batch's
    rows, and read back once an epoch, so recording them costs no host
    synchronisation per batch. History keys, one value per column:

    ``train_column_nll``
        the training batches' loss of the epoch (each batch as it was
        computed, while the weights moved);
    ``valid_column_nll``
        the validation rows' loss after the epoch's training, recorded only
        when the net has a validation split. The module is in evaluation
        mode there; the imputer's split hides a fixed share of the rows'
        observed cells from the encoder (as ``cell_dropout`` does at random
        in training), so it is the held-out counterpart of the training
        loss, with the same per-cell weighting.

    These histories show *feature overlooking*: a column whose loss stalls,
    or whose validation loss rises, while the total improves.
    """

    def on_epoch_begin(self, net, **kwargs):
        self._sums = {True: None, False: None}
        self._rows = {True: 0, False: 0}

    def on_batch_end(self, net, batch=None, training=None, y_pred=None, **kwargs):
        if not isinstance(y_pred, dict) or "column_nll" not in y_pred:
            return
        rows = len(next(iter(batch[0].values())))
        total = y_pred["column_nll"].detach() * rows
        previous = self._sums[training]
        self._sums[training] = total if previous is None else previous + total
        self._rows[training] += rows

    def on_epoch_end(self, net, **kwargs):
        for training, key in ((True, "train_column_nll"), (False, "valid_column_nll")):
            if self._sums[training] is not None:
                net.history.record(key, (self._sums[training] / self._rows[training]).tolist())


_NO_PREDICTIONS = ("VAENet's module returns a dict of losses per batch, not predictions: use the imputer's "
                   "transform, score or sample, or net.forward_iter for the per-batch dicts")


class VAENet(NeuralNet):
    """skorch NeuralNet whose module returns its own loss dict.

    The module's ``forward(x, observed)`` returns ``{"loss", "column_nll", ...}``;
    there is no target.
    """

    def __init__(self, module, *args, criterion=torch.nn.Identity, **kwargs):
        super().__init__(module, *args, criterion=criterion, **kwargs)

    def _set_training(self, training=True):
        # skorch switches modes before every batch; Module.train() walks every
        # submodule, a measurable share of a tabular-size step. Switch only
        # when the module is not in the requested mode already.
        if self.module_.training != training:
            super()._set_training(training)

    def __getstate__(self):
        # skorch pickles the attributes named by these prefixes through torch, with a
        # device map on loading; the module given at construction (the same object as
        # module_) and the callbacks (ColumnLossHistory keeps tensors on the training
        # device) go with them, so a net trained on CUDA loads on a machine without it
        # and the module is stored once
        saved = self.cuda_dependent_attributes_
        self.cuda_dependent_attributes_ = saved + [p for p in ("module", "callbacks") if p not in saved]
        try:
            return super().__getstate__()
        finally:
            self.cuda_dependent_attributes_ = saved

    def get_dataset(self, X, y=None):
        if isinstance(X, (_TensorDataset, torch.utils.data.Dataset)):  # e.g. the held-out split, passed back by a scorer
            return X
        return _TensorDataset(X, y)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.epochs_trained_ = 0

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self.epochs_trained_ += 1

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # runs before the callbacks' on_train_end: a Checkpoint that loads the
        # best epoch's parameters also loads the history saved with them,
        # which would forget the epochs trained after it
        self._trained_history = self.history

    def fit(self, X, y=None, **fit_params):
        super().fit(X, y, **fit_params)
        trained = getattr(self, "_trained_history", None)
        if trained is not None and trained is not self.history:
            self.history = trained
        return self

    def forward(self, X, training=False, device="cpu"):
        raise TypeError(_NO_PREDICTIONS)

    def predict_proba(self, X):
        raise TypeError(_NO_PREDICTIONS)

    def predict(self, X):
        raise TypeError(_NO_PREDICTIONS)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return y_pred["loss"]

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, _ = batch
        out = self.infer(Xi, **fit_params)
        loss = out["loss"]
        loss.backward()
        return {"loss": loss, "y_pred": out}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        Xi, _ = batch
        with torch.no_grad():
            out = self.infer(Xi, **fit_params)
        return {"loss": out["loss"], "y_pred": out}


class EpochSchedule(Callback):
    """Tells the module which epoch starts, for schedules such as HI-VAE's Gumbel-softmax temperature.

    Calls ``net.module_.set_epoch(epoch)`` (0-based) before each epoch's
    first batch. Counting from the history makes a warm restart
    (``partial_fit``) continue the schedule instead of restarting it.
    """

    def on_epoch_begin(self, net, **kwargs):
        set_epoch = getattr(net.module_, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(len(net.history) - 1)


class WeightAverage(Callback):
    """Ends training with an exponential moving average of the weights over the steps.

    With a constant learning rate, Adam's iterates keep jittering around the
    minimum they have reached; their running average sits nearer its centre
    (Polyak averaging, Polyak and Juditsky 1992, in the exponential form of
    e.g. TensorFlow's ``ExponentialMovingAverage``). After the ``n``-th
    training step the average moves towards the current weights by
    ``1 - min(decay, (1 + n) / (10 + n))``; the warm-up keeps a short
    training from being dominated by its first, poor weights. At the end of
    training the module's parameters are replaced by their average, so
    whatever uses the module next (imputation, a saved checkpoint) sees it,
    unless the net has a callback with ``load_best=True`` (skorch's
    ``EarlyStopping``): the weights are then those of its best epoch.

    Only parameters are averaged. Buffers stay those of the trained module:
    the models' BatchNorm layers normalise the encoder's input, so their
    running statistics describe the data, not the weights. Losses recorded
    in the history during training are those of the current, not the
    averaged, weights.

    Parameters
    ----------
    decay : float in [0, 1)
        Weight of the old average at each step; the average spans about
        ``1 / (1 - decay)`` steps. 0 keeps the last step's weights.
    """

    def __init__(self, decay: float = 0.995):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.steps_ = 0
        # torch.optim.swa_utils.AveragedModel does the same updates but walks the
        # module tree on every step (~0.7 ms, 5 % of a tabular step); list it once
        self._params = list(net.module_.parameters())
        self.average_ = [p.detach().clone() for p in self._params]

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            self.steps_ += 1
            n = self.steps_
            weight = 1.0 if n == 1 else 1.0 - min(self.decay, (1.0 + n) / (10.0 + n))
            with torch.no_grad():
                if weight == 1.0:
                    torch._foreach_copy_(self.average_, self._params)
                else:
                    torch._foreach_lerp_(self.average_, self._params, weight)

    def on_train_end(self, net, **kwargs):
        # a callback that restores its best epoch's weights (EarlyStopping with
        # load_best) does so only when that epoch is not the last; the weights
        # must then be that epoch's whichever it was, never the average
        if not any(getattr(callback, "load_best", False) for _, callback in net.callbacks_):
            with torch.no_grad():
                for param, average in zip(self._params, self.average_):
                    param.copy_(average)
        # the copy would double the size of a pickled net
        del self.average_, self._params
