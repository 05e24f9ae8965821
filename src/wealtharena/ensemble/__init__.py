"""The mixture-of-experts desk: one fund whose capital routers split among expert sleeves.

experts  (ensemble.experts)   the agents (identical ones once), cash, classic portfolios: sleeves that
                              run every day of the split, each through its own risk limits, so each has
                              a realised, net-of-cost return every day
signals  (ensemble.signals)   causal market state per day: index volatility and its history, trend,
                              drawdown, dispersion, the volatility regime
routers  (ensemble.routers)   at the close of day t, the capital weight of each expert for t+1 (or, in
                              ranking mode, the book itself), from what is known at that close
fund     (ensemble.fund)      the mixed book passes the fund profile's risk gate (the agents' gate, not
                              a second one) and pays costs on its own net trades
desk     (ensemble.desk)      all of it for one split, with the baselines, the decision log and the
                              gate's fit record; ensemble.report draws and tabulates it
"""
