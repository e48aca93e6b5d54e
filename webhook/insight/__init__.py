"""What operators see: the inventory and report, recent decisions, the status page, traces."""
