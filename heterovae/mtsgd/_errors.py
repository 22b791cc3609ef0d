"""The error the direction computations raise for inputs that are not finite."""


class NonFiniteError(ValueError):
    """Particles, scores or the Gram matrix ``U`` hold NaN or infinity.

    A ``ValueError`` for callers of the public functions; the estimators
    catch it by type to report a diverged training as such.
    """
