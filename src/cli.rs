//! Purpose: the HTTP client side of `boomerang logs` and `boomerang search`.
