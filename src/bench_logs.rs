//! Purpose: `boomerang bench logs`.
