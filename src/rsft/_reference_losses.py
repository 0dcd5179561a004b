"""Reference (numpy) loss kernels; twin of _loss_kernels.pxi."""

__all__ = []
