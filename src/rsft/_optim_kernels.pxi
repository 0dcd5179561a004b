# Optimizer kernels (included by _core.pyx); twin of rsft._reference_optim.
