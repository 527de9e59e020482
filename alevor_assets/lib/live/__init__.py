"""The live path: new trades to alerts within seconds, from the same bar kernel, feature code and
scoring function as the daily assets (README "Live alerts")."""
