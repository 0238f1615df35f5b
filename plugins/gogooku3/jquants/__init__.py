"""J-Quants v2 access: ``client`` (async transport), ``pages`` (page decoding), ``endpoints``
(the catalogue of endpoints, tables and plans), ``errors``, ``ratelimit``.

Import the submodules; this package imports nothing, so that reading the catalogue (e.g.
at Airflow DAG parse time) does not load the HTTP stack.
"""
