"""scoring's writes: agreement reports (computed and cached) and judgment import/export."""
