"""JPX rules used by every layer: the trading calendar, JST trade dates, session closes
and TSE daily price limits. Imports nothing from the rest of gogooku3."""
