"""gogooku3: J-Quants -> Delta lakehouse -> Spark features -> ATFT-GAT-FAN."""
__version__ = "0.1.0"
