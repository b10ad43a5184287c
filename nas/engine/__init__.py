"""A CPU synthesis engine for trained models, outside TensorFlow (NumPy, SciPy, Numba)."""
