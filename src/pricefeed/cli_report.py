"""`pricefeed report`: a self-contained HTML (and PNG) report (being written)."""
