"""Miner simulator: the CGMiner JSON API of N simulated ASIC miners on loopback, with scripted faults.

Run ``python -m edge.simulator --help``; see edge/README.md. Standard library only, no Django.
"""
