"""Site-local edge software: the miner simulator and the collector. Imports nothing from the Django apps."""
