"""Operating the dispatch: find stuck orders, re-drive them, bring the database in step with
the workflows. Used by the `o2o stuck|redrive|reconcile` commands and `GET /orders/stuck`."""
