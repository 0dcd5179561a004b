"""Reference (numpy) optimizer kernels; twin of _optim_kernels.pxi."""

__all__ = []
