"""Feast objects of gogooku3 for the Feast CLI (``feast -c feature_repo plan``).

The definitions live in ``gogooku3.serving.feature_views`` (``gogooku3 serve materialize``
applies the same objects); module-level names are what Feast's repository scan finds.
"""

from gogooku3.serving.feast_store import offline_dir
from gogooku3.serving.feature_views import feast_objects
from gogooku3.settings import get_settings

(
    code,
    gold_features,
    gold_predictions,
    stock_features_cs_z,
    stock_features_raw,
    stock_forecast,
    stock_features_vector,
    stock_forecast_vector,
) = feast_objects(offline_dir(get_settings()))
