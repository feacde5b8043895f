"""Reports over recorded orders: the fairness check of the draws (more reports to come)."""
