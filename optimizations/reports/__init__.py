"""Reports: ROI, the portfolio, the SLO board, capacity, charts and the printable report."""
