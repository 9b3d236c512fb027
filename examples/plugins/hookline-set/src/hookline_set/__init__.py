"""Set and Delay nodes for Hookline."""
