"""Items, prices and reports."""
