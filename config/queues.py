"""RQ queue names, in the order a worker serves them."""

SAGAS = "shop-sagas"
PROJECTIONS = "shop-projections"
QUEUES = (SAGAS, PROJECTIONS)
